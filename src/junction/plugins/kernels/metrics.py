"""What the kernels plugin tells Prometheus: kernels by state and spec, WebSocket traffic.

Connections count messages and bytes per channel in a :class:`WireStats` (plain integers in
dictionaries, a few tens of nanoseconds per message); :func:`collector` turns them, and the
kernels the manager holds, into metric families only when ``/metrics`` is scraped.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric

if TYPE_CHECKING:
    from junction.plugins.kernels.manager import JupyterClientKernels

__all__ = ["WireStats", "collector"]


class WireStats:
    """Messages and bytes through kernel WebSockets since the server started, per channel.

    ``*_in`` counts what clients sent, ``*_out`` what they were sent. Bytes are frame sizes:
    exact for binary frames, characters for text frames (JSON is almost always ASCII).
    """

    __slots__ = ("bytes_in", "bytes_out", "messages_in", "messages_out")

    def __init__(self) -> None:
        self.messages_in: defaultdict[str, int] = defaultdict(int)
        self.bytes_in: defaultdict[str, int] = defaultdict(int)
        self.messages_out: defaultdict[str, int] = defaultdict(int)
        self.bytes_out: defaultdict[str, int] = defaultdict(int)


def collector(kernels: JupyterClientKernels) -> Callable[[], Iterable[Metric]]:
    """A collect function for :meth:`junction.metrics.Metrics.add_collector`."""

    def collect() -> Iterable[Metric]:
        by_state = GaugeMetricFamily(
            "junction_kernels",
            "Kernels running, by execution state and kernel spec.",
            labels=["state", "spec"],
        )
        counts = Counter((k.hub.execution_state, k.name) for k in kernels.managed())
        for (state, spec), count in sorted(counts.items()):
            by_state.add_metric([state, spec], count)
        yield by_state
        yield GaugeMetricFamily(
            "junction_kernels_prespawned",
            "Prespawned kernels waiting in the pool (kernels.prespawn_count).",
            value=len(kernels.pool),
        )
        yield GaugeMetricFamily(
            "junction_kernel_websocket_connections",
            "Kernel WebSockets open.",
            value=kernels.connection_count(),
        )
        stats = kernels.wire_stats
        messages = CounterMetricFamily(
            "junction_kernel_websocket_messages",
            "Kernel WebSocket messages, by direction (from or to clients) and channel.",
            labels=["direction", "channel"],
        )
        size = CounterMetricFamily(
            "junction_kernel_websocket_bytes",
            "Kernel WebSocket frame bytes, by direction (from or to clients) and channel.",
            labels=["direction", "channel"],
        )
        for direction, counted, sized in (
            ("from_client", stats.messages_in, stats.bytes_in),
            ("to_client", stats.messages_out, stats.bytes_out),
        ):
            for channel in sorted(counted):
                messages.add_metric([direction, channel], counted[channel])
                size.add_metric([direction, channel], sized[channel])
        yield messages
        yield size

    return collect
