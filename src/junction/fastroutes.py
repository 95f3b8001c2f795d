"""Fast routes: hot requests answered without FastAPI's per-request machinery.

FastAPI stays the description of every route (the OpenAPI spec, validation, the fallback),
but for the requests clients send most (``/api/status``, small contents reads), its routing
matches the path twice through the included routers and solves the dependency graph on every
request, which costs more than the work itself. A route opts out of that with
:func:`fast_route`: its FastAPI endpoint gets a *twin*, a plain ``async (Request) -> Response``
that does what the endpoint does with its dependencies looked up directly, and
:class:`FastRoutesMiddleware` (innermost) calls the twin when the request would reach that
endpoint anyway::

    async def _status_now(request: Request) -> Response:
        return _status_response(request.app.state.services.get(SERVER))

    @router.get("/api/status")
    @fast_route(_status_now)
    async def status(state: Annotated[ServerState, use(SERVER)]) -> Response: ...

"Would reach that endpoint" is exact: the table lists every route of the app in FastAPI's
order, and a fast route answers only when no earlier route matches the request fully (a
``.../checkpoints`` route declared before ``/api/contents/{path:path}`` keeps its requests).
Errors a twin raises go to the app's exception handlers, as the endpoint's would; an
unexpected exception propagates to the server-error handler as usual. Twins only suit
endpoints that return a ``Response`` and read the request themselves (no body model, no
query parameters declared for FastAPI to validate): the twin must answer byte for byte what
the endpoint answers, which the routes' tests check through both paths.
"""

from __future__ import annotations

import inspect
import logging
import re
from collections.abc import Awaitable, Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import Any, TypeVar, cast

from fastapi import FastAPI
from fastapi.routing import APIRoute
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response
from starlette.types import ASGIApp, Receive, Scope, Send

__all__ = ["FastEndpoint", "FastRoutesMiddleware", "fast_route", "twin_of"]

log = logging.getLogger("junction")

FastEndpoint = Callable[[Request], Awaitable[Response]]
"""A twin: answers one request as the FastAPI endpoint it stands for would."""

F = TypeVar("F", bound=Callable[..., Any])

_TWIN = "__junction_fast_route__"
_Handler = Callable[[Request, Any], Response | Awaitable[Response]]


def fast_route(twin: FastEndpoint) -> Callable[[F], F]:
    """Mark a FastAPI endpoint as answered by ``twin`` on the hot path.

    Apply it below ``@router.get(...)`` so FastAPI registers the marked function. The twin
    reads path parameters from ``request.path_params`` and services from
    ``request.app.state.services``; it must give the response the endpoint gives.
    """

    def mark(endpoint: F) -> F:
        setattr(endpoint, _TWIN, twin)
        return endpoint

    return mark


def twin_of(endpoint: Callable[..., Any]) -> FastEndpoint | None:
    """The twin :func:`fast_route` gave ``endpoint``, or None."""
    twin: FastEndpoint | None = getattr(endpoint, _TWIN, None)
    return twin


@dataclass(frozen=True, slots=True)
class _Route:
    """One route of the app as FastAPI matches it: the full path regex and its methods."""

    regex: re.Pattern[str]
    literal: str
    """The path up to the first parameter: a cheap test before the regex."""
    methods: frozenset[str] | None
    """None for routes that match whatever the method (mounts, WebSockets)."""
    route: Any
    """What FastAPI puts in ``scope["route"]`` when this route matches."""
    convertors: dict[str, Any]
    twin: FastEndpoint | None


@dataclass(frozen=True, slots=True)
class _FastEntry:
    """A fast route and the earlier routes that may take its requests first."""

    route: _Route
    shadows: tuple[_Route, ...]


def _literal(path_format: str) -> str:
    return path_format.split("{", 1)[0]


def _routes(routes: Iterable[Any]) -> Iterator[_Route | None]:
    """Every route in FastAPI's matching order; None for one this module cannot read."""
    for candidate in routes:
        nested = getattr(candidate, "effective_candidates", None)
        if nested is not None:  # an included router (FastAPI keeps them unflattened)
            yield from _routes(nested())
            continue
        original = getattr(candidate, "original_route", candidate)
        regex = getattr(candidate, "path_regex", None)
        path_format = getattr(candidate, "path_format", None)
        if not isinstance(regex, re.Pattern) or not isinstance(path_format, str):
            starlette_route = getattr(candidate, "starlette_route", None)
            regex = getattr(starlette_route, "path_regex", None)
            path_format = getattr(starlette_route, "path_format", None)
            if not isinstance(regex, re.Pattern) or not isinstance(path_format, str):
                yield None
                continue
        methods = getattr(candidate, "methods", None)
        twin = twin_of(original.endpoint) if isinstance(original, APIRoute) else None
        yield _Route(
            regex=regex,
            literal=_literal(path_format),
            methods=frozenset(methods) if methods and isinstance(original, APIRoute) else None,
            route=original,
            convertors=dict(getattr(candidate, "param_convertors", {}) or {}),
            twin=twin,
        )


def _may_overlap(earlier: _Route, fast: _Route) -> bool:
    """Whether ``earlier`` could match a path ``fast`` matches (cheap, conservative)."""
    if fast.regex.groups == 0:
        return earlier.regex.match(fast.literal) is not None
    if earlier.regex.groups == 0:  # a fixed path: its template is the path itself
        return fast.regex.match(earlier.literal) is not None
    return earlier.literal.startswith(fast.literal) or fast.literal.startswith(earlier.literal)


def build_table(app: FastAPI) -> dict[str, list[_FastEntry]] | None:
    """The fast routes of ``app`` by method, each with its shadows; None if FastAPI's
    routes cannot be read (then every request takes FastAPI's path)."""
    ordered = list(_routes(app.router.routes))
    if any(route is None for route in ordered):
        log.warning("fast routes are off: a route of an unknown kind")
        return None
    table: dict[str, list[_FastEntry]] = {}
    known = [route for route in ordered if route is not None]
    for index, route in enumerate(known):
        if route.twin is None or route.methods is None:
            continue
        shadows = tuple(earlier for earlier in known[:index] if _may_overlap(earlier, route))
        for method in route.methods:
            table.setdefault(method, []).append(_FastEntry(route, shadows))
    return table


class FastRoutesMiddleware:
    """Answer requests for fast routes by their twins; pass everything else to FastAPI.

    The innermost middleware: the gate (authentication, XSRF, security headers, metrics)
    has run by the time a twin is called, exactly as for the FastAPI endpoint. The table is
    built at the first request, when every plugin's routers are included.
    """

    def __init__(self, app: ASGIApp, *, routes_of: FastAPI) -> None:
        self.app = app
        self.source = routes_of
        self.table: dict[str, list[_FastEntry]] | None = None
        self.built = False
        self.handlers: dict[type[BaseException], _Handler] = {}

    def _build(self) -> None:
        self.table = build_table(self.source)
        # The handlers FastAPI's ExceptionMiddleware applies; the catch-all for Exception
        # belongs to the outer server-error middleware, which the twin's errors still reach.
        self.handlers = {
            key: handler
            for key, handler in self.source.exception_handlers.items()
            if isinstance(key, type) and key is not Exception
        }
        self.built = True

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope.get("root_path"):
            await self.app(scope, receive, send)
            return
        if not self.built:
            self._build()
        entries = self.table.get(scope["method"]) if self.table else None
        if entries:
            path: str = scope["path"]
            for entry in entries:
                fast = entry.route
                if not path.startswith(fast.literal):
                    continue
                match = fast.regex.match(path)
                if match is None:
                    continue
                if any(_takes(earlier, path, scope["method"]) for earlier in entry.shadows):
                    break
                await self._answer(fast, match, scope, receive, send)
                return
        await self.app(scope, receive, send)

    async def _answer(
        self, fast: _Route, match: re.Match[str], scope: Scope, receive: Receive, send: Send
    ) -> None:
        assert fast.twin is not None
        params = {
            name: fast.convertors[name].convert(value) if name in fast.convertors else value
            for name, value in match.groupdict().items()
        }
        scope["path_params"] = {**scope.get("path_params", {}), **params}
        scope["endpoint"] = fast.route.endpoint
        scope["route"] = fast.route
        scope.setdefault("router", self.source.router)  # for request.url_for, as FastAPI sets it
        request = Request(scope, receive, send)
        try:
            response = await fast.twin(request)
        except Exception as exc:
            handler = self._handler_for(exc)
            if handler is None:
                raise
            if inspect.iscoroutinefunction(handler):
                response = await handler(request, exc)
            else:  # as Starlette runs plain handlers
                plain = cast(Callable[[Request, Any], Response], handler)
                response = await run_in_threadpool(plain, request, exc)
        await response(scope, receive, send)

    def _handler_for(self, exc: Exception) -> _Handler | None:
        for cls in type(exc).__mro__:
            handler = self.handlers.get(cls)
            if handler is not None:
                return handler
        return None


def _takes(earlier: _Route, path: str, method: str) -> bool:
    """Whether FastAPI would hand ``path`` to ``earlier`` (a full match) before the fast route."""
    if earlier.regex.match(path) is None:
        return False
    return earlier.methods is None or method in earlier.methods
