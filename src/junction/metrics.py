"""Prometheus metrics: the :data:`METRICS` service, the request middleware and ``/metrics``.

Counting must cost next to nothing on the paths it measures, so nothing here calls
``prometheus_client`` per event: requests and messages increment plain integers, and
collectors turn them into metric families only when Prometheus scrapes ``/metrics``.

- :class:`Metrics` is the core service (:data:`METRICS`): one ``CollectorRegistry`` per app,
  the request statistics, the event-loop lag probe, and :meth:`Metrics.add_collector`, the one
  way plugins contribute their own metrics (kernels by state, WebSocket traffic).
- :class:`RequestMetricsMiddleware` (outermost) times every HTTP request and records its
  status; :class:`RouteCaptureMiddleware` (innermost) tells it which route matched, so
  durations are labelled by route *template* (``/api/kernels/{kernel_id}``), never by a
  raw path; requests no route matched (404s, refusals before routing) share one label.
- ``GET /metrics`` serves the text format to the server token, to an admin in multi-user
  mode, or to the ``metrics_token`` (which opens nothing else).
"""

from __future__ import annotations

import bisect
import hmac
import logging
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from typing import Annotated

import anyio
from fastapi import APIRouter, Request
from fastapi.responses import Response
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    GCCollector,
    PlatformCollector,
    ProcessCollector,
    generate_latest,
)
from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
)
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from junction.errors import Unauthorized
from junction.plugin import ServiceKey, use
from junction.services import AUTH, SERVER, ServerState

__all__ = [
    "DURATION_BUCKETS",
    "METRICS",
    "UNMATCHED_ROUTE",
    "Metrics",
    "MetricsCollect",
    "RequestMetricsMiddleware",
    "RouteCaptureMiddleware",
    "router",
]

log = logging.getLogger("junction.metrics")

DURATION_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
"""Upper bounds (seconds) of the request duration histogram; ``+Inf`` is implied."""

UNMATCHED_ROUTE = "unmatched"
"""The route label of requests no route matched: 404s, and refusals before routing."""

LAG_INTERVAL = 1.0
"""Seconds between two event-loop lag measurements."""

_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})
_EXCHANGE_KEY = "junction.metrics"
_STATUS_CLASSES = ("0xx", "1xx", "2xx", "3xx", "4xx", "5xx", "6xx", "7xx", "8xx", "9xx")

MetricsCollect = Callable[[], Iterable[Metric]]
"""A function returning metric families; called on every scrape, on the event loop."""


class _Collector:
    """Adapts a plain function to ``prometheus_client``'s collector protocol."""

    def __init__(self, collect: MetricsCollect) -> None:
        self._collect = collect

    def collect(self) -> Iterable[Metric]:
        return self._collect()


@dataclass(slots=True)
class _Series:
    """One (method, route, status class): bucket counts (not cumulative), sum and count."""

    buckets: list[int] = field(default_factory=lambda: [0] * (len(DURATION_BUCKETS) + 1))
    total: float = 0.0
    count: int = 0


class Metrics:
    """The metrics of one server: the core's own, and those plugins add.

    Created by the app factory and provided to every plugin as :data:`METRICS` (declare it in
    ``optional``, since a plugin may also run where metrics are absent)::

        metrics = ctx.get_optional(METRICS)
        if metrics is not None:
            remove = metrics.add_collector(my_collect)
    """

    def __init__(self, state: ServerState) -> None:
        self.registry = CollectorRegistry()
        self.state = state
        self.loop_lag = 0.0
        self.loop_lag_max = 0.0
        self._series: dict[tuple[str, str, str], _Series] = {}
        ProcessCollector(registry=self.registry)
        PlatformCollector(registry=self.registry)
        GCCollector(registry=self.registry)
        self.add_collector(self._collect_core)

    def add_collector(self, collect: MetricsCollect) -> Callable[[], None]:
        """Call ``collect`` on every scrape; returns a function that removes it again.

        A plugin adds its collectors when it starts and removes them when it stops. Metric
        names should start with ``junction_`` and follow Prometheus conventions (base units,
        ``_total`` counters). A collector that raises is logged and skipped for that scrape.
        """

        def guarded() -> Iterable[Metric]:
            try:
                return list(collect())
            except Exception:
                log.exception("a metrics collector failed")
                return []

        collector = _Collector(guarded)
        self.registry.register(collector)
        return lambda: self.registry.unregister(collector)

    def observe_request(self, method: str, route: str, status: int, seconds: float) -> None:
        """Record one finished HTTP request; called by :class:`RequestMetricsMiddleware`."""
        key = (method if method in _METHODS else "other", route, _STATUS_CLASSES[status // 100])
        series = self._series.get(key)
        if series is None:
            series = self._series[key] = _Series()
        series.buckets[bisect.bisect_left(DURATION_BUCKETS, seconds)] += 1
        series.total += seconds
        series.count += 1

    def expose(self) -> bytes:
        """Every metric in the Prometheus text format."""
        return generate_latest(self.registry)

    async def run_lag_probe(self, interval: float = LAG_INTERVAL) -> None:
        """Measure how late the event loop wakes a sleeping task, forever (until cancelled).

        A loop busy with blocking work wakes sleepers late; the delay is what every request
        and kernel message waits on top of its own work.
        """
        while True:
            began = time.perf_counter()
            await anyio.sleep(interval)
            self.loop_lag = max(0.0, time.perf_counter() - began - interval)
            self.loop_lag_max = max(self.loop_lag_max, self.loop_lag)

    def _collect_core(self) -> Iterator[Metric]:
        duration = HistogramMetricFamily(
            "junction_http_request_duration_seconds",
            "Time from request to the end of the response, by route template.",
            labels=["method", "route"],
        )
        responses = CounterMetricFamily(
            "junction_http_responses",
            "HTTP responses by route template and status class.",
            labels=["method", "route", "status_class"],
        )
        merged: dict[tuple[str, str], _Series] = {}
        for (method, route, status_class), series in list(self._series.items()):
            responses.add_metric([method, route, status_class], series.count)
            total = merged.setdefault((method, route), _Series())
            total.buckets = [a + b for a, b in zip(total.buckets, series.buckets, strict=True)]
            total.total += series.total
            total.count += series.count
        for (method, route), series in sorted(merged.items()):
            cumulative, buckets = 0, []
            for bound, count in zip((*DURATION_BUCKETS, float("inf")), series.buckets, strict=True):
                cumulative += count
                buckets.append((_bound_label(bound), float(cumulative)))
            duration.add_metric([method, route], buckets, series.total)
        yield duration
        yield responses
        yield GaugeMetricFamily(
            "junction_event_loop_lag_seconds",
            f"How late the event loop last woke a task sleeping {LAG_INTERVAL:g} s.",
            value=self.loop_lag,
        )
        yield GaugeMetricFamily(
            "junction_event_loop_lag_max_seconds",
            "The largest event-loop lag measured since the server started.",
            value=self.loop_lag_max,
        )
        yield GaugeMetricFamily(
            "junction_terminals", "Terminals running.", value=self.state.gauge("terminals")
        )
        yield GaugeMetricFamily(
            "junction_start_time_seconds",
            "When the server started, in seconds since the Unix epoch.",
            value=self.state.started.timestamp(),
        )


def _bound_label(bound: float) -> str:
    return "+Inf" if bound == float("inf") else repr(bound)


METRICS: ServiceKey[Metrics] = ServiceKey("metrics")
"""The core's :class:`Metrics`, available to every plugin that lists it in ``optional``."""


class _Exchange:
    """What the middleware learns about one request while it runs."""

    __slots__ = ("route", "status")

    def __init__(self) -> None:
        self.route = UNMATCHED_ROUTE
        self.status = 500  # until a response starts: an exception escaping counts as 500


class RequestMetricsMiddleware:
    """Time every HTTP request and count its status; the outermost middleware.

    The route label comes from :class:`RouteCaptureMiddleware`, which sits next to the router
    (middleware in between may copy the ASGI scope, hiding the router's ``scope["route"]``).
    """

    def __init__(self, app: ASGIApp, *, metrics: Metrics) -> None:
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        began = time.perf_counter()
        exchange = scope[_EXCHANGE_KEY] = _Exchange()

        async def sender(message: Message) -> None:
            if message["type"] == "http.response.start":
                exchange.status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, sender)
        finally:
            self.metrics.observe_request(
                scope["method"], exchange.route, exchange.status, time.perf_counter() - began
            )


class RouteCaptureMiddleware:
    """Hand the matched route's path template to :class:`RequestMetricsMiddleware`.

    Templates are relative to the base URL (``/api/status`` on every server), whether or not
    the router's route carries the base URL as a prefix.
    """

    def __init__(self, app: ASGIApp, *, base_url: str = "/") -> None:
        self.app = app
        self.prefix = base_url.rstrip("/")

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        try:
            await self.app(scope, receive, send)
        finally:
            exchange = scope.get(_EXCHANGE_KEY)
            route = scope.get("route")
            if exchange is not None and route is not None:
                template = getattr(route, "path_format", None) or getattr(route, "path", None)
                if isinstance(template, str):
                    if self.prefix and template.startswith(self.prefix + "/"):
                        template = template[len(self.prefix) :]
                    exchange.route = template


# -- /metrics ---------------------------------------------------------------------------------

router = APIRouter()
METRICS_PATH = "metrics"
"""Where the text format is served, relative to the base URL."""


@router.get(f"/{METRICS_PATH}", tags=["server"], include_in_schema=False)
async def metrics(request: Request, state: Annotated[ServerState, use(SERVER)]) -> Response:
    """The Prometheus text format, for the server token or the ``metrics_token``."""
    services = request.app.state.services
    auth = services.get(AUTH)
    header = request.headers.get("authorization")
    supplied = auth.token_from_header(header)
    wanted = state.settings.metrics_token
    allowed = (
        wanted is not None
        and supplied is not None
        and hmac.compare_digest(supplied.encode(), wanted.get_secret_value().encode())
    )
    if not allowed:
        user, _ = await auth.identify(query_token=None, header=header, cookie=None)
        allowed = user is not None and (auth.identity is None or user.admin)
    if not allowed:
        raise Unauthorized(
            "send the server token or the metrics token as 'Authorization: Bearer <token>'"
        )
    body = services.get(METRICS).expose()
    return Response(body, media_type=CONTENT_TYPE_LATEST)
