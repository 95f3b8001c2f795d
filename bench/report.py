"""The Markdown table of a run and its JSON results file.

Each row summarizes one series: the median (p50) unless the row says otherwise. The ratio
columns compare a server with jupyter_server so that above 1 is always better: for times and
memory it is jupyter_server's value divided by the server's, for rates the other way round.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from bench.plan import Plan
from bench.results import Results, Stat, summarize
from bench.scenarios.apps import Sizes
from bench.targets import FLOOR

__all__ = ["Row", "markdown_table", "rows_for", "write_json"]

BASELINE = "jupyter_server"


@dataclass(frozen=True)
class Row:
    """One line of the table."""

    label: str
    unit: str
    series: str
    stat: Stat = "p50"
    better: Literal["lower", "higher"] = "lower"
    scale: float = 1.0
    floor_series: str | None = None


def _count(n: int) -> str:
    return f"{n:,}"


def rows_for(plan: Plan) -> list[Row]:
    """The table's rows, labelled with this plan's sizes."""
    mb = 1 / (1 << 20)
    rows = [
        Row("cold start to first 200 on /api", "s", "cold_start"),
        Row("server RSS, idle", "MB", "rss_idle", scale=mb),
        Row(f"server RSS, {plan.kernels_for_rss} kernels", "MB", "rss_kernels", scale=mb),
        Row("server tree PSS, idle", "MB", "pss_tree_idle", scale=mb),
        Row(
            f"server tree PSS, {plan.kernels_for_rss} kernels",
            "MB",
            "pss_tree_kernels",
            scale=mb,
        ),
        Row(
            "kernel start to kernel_info_reply",
            "ms",
            "kernel_start",
            scale=1e3,
            floor_series="kernel_start",
        ),
        Row("kernel start, prespawned", "ms", "kernel_start_prespawned", scale=1e3),
        Row(
            "execute `1+1` round trip, JSON, p50",
            "ms",
            "rtt_json",
            scale=1e3,
            floor_series="rtt_zmq",
        ),
        Row(
            "execute `1+1` round trip, JSON, p99",
            "ms",
            "rtt_json",
            "p99",
            scale=1e3,
            floor_series="rtt_zmq",
        ),
        Row("execute `1+1` round trip, v1, p50", "ms", "rtt_v1", scale=1e3, floor_series="rtt_zmq"),
        Row(
            "execute `1+1` round trip, v1, p99",
            "ms",
            "rtt_v1",
            "p99",
            scale=1e3,
            floor_series="rtt_zmq",
        ),
        Row(
            f"stream {_count(plan.stream_lines)} printed lines",
            "msg/s",
            "stream_lines",
            better="higher",
            floor_series="stream_lines",
        ),
        Row(
            "stream messages lost",
            "%",
            "stream_lost",
            "max",
            floor_series="stream_lost",
        ),
        Row("server CPU per stream message", "µs", "cpu_per_msg", scale=1e6),
        Row(
            f"one {plan.big_output_mb} MB output",
            "MB/s",
            "big_output",
            better="higher",
            floor_series="big_output",
        ),
        Row("server CPU per output MB", "ms", "cpu_per_mb", scale=1e3),
        Row(
            f"{plan.fanout_clients} clients on one kernel, per client (median)",
            "msg/s",
            "fanout",
            better="higher",
            floor_series="fanout",
        ),
        Row(
            f"{plan.fanout_clients} clients on one kernel, slowest client",
            "msg/s",
            "fanout",
            "min",
            better="higher",
            floor_series="fanout",
        ),
        Row(
            f"{plan.fanout_clients} clients on one kernel, messages lost (worst client)",
            "%",
            "fanout_lost",
            "max",
            floor_series="fanout_lost",
        ),
    ]
    for count in (plan.listing_small, plan.listing_large):
        if count:
            rows.append(Row(f"list {_count(count)} files, whole", "s", f"list_{count}"))
            rows.append(
                Row(f"list {_count(count)} files, first page of 500", "s", f"list_{count}_page")
            )
            rows.append(
                Row(
                    f"list {_count(count)} files, first page of 500, directory order",
                    "s",
                    f"list_{count}_page_dir",
                )
            )
    if plan.big_file_mb:
        rows.append(
            Row(f"GET {plan.big_file_mb} MB file, /files/", "MB/s", "files_big", better="higher")
        )
        rows.append(
            Row(
                f"GET {plan.big_file_mb} MB file, /api/contents",
                "MB/s",
                "contents_big",
                better="higher",
            )
        )
    conns = plan.load_connections
    rows += [
        Row(f"GET /api/status, {conns} connections", "req/s", "rps_status", better="higher"),
        Row(f"GET /api/status, {conns} connections, p99", "ms", "p99_status", scale=1e3),
        Row(
            f"GET /api/contents small file, {conns} connections",
            "req/s",
            "rps_contents",
            better="higher",
        ),
        Row(
            f"GET /api/contents small file, {conns} connections, p99",
            "ms",
            "p99_contents",
            scale=1e3,
        ),
    ]
    rows += [
        Row("terminal keystroke to echo, p50", "ms", "term_echo", scale=1e3),
        Row("terminal keystroke to echo, p99", "ms", "term_echo", "p99", scale=1e3),
        Row("server CPU per terminal keystroke", "µs", "term_cpu_key", scale=1e6),
        Row(
            f"terminal output, `yes | head -c {plan.terminal_output_mb}M`",
            "MB/s",
            "term_output",
            better="higher",
        ),
        Row("server CPU per terminal output MB", "ms", "term_cpu_mb", scale=1e3),
        Row("open a 5 MB, 500-cell notebook into a room", "ms", "collab_open", scale=1e3),
        Row("room update to 20 clients, p50", "ms", "collab_fanout", scale=1e3),
        Row("room update to 20 clients, p99", "ms", "collab_fanout", "p99", scale=1e3),
        Row("server memory per open room (5 MB notebook)", "MB", "collab_rss_room"),
    ]
    rows += _app_rows(plan)
    return rows


def _app_rows(plan: Plan) -> list[Row]:
    """The app proxies (the floor column: the app reached directly, no proxy)."""
    sizes = Sizes.for_plan(plan)
    return [
        Row(
            "app proxy: small GET, one connection",
            "ms",
            "apps_small",
            scale=1e3,
            floor_series="apps_small",
        ),
        Row(
            f"app proxy: small GETs, {sizes.connections} connections",
            "req/s",
            "apps_rps",
            better="higher",
            floor_series="apps_rps",
        ),
        Row("app proxy: server CPU per small GET", "µs", "apps_cpu_per_request", scale=1e6),
        Row(
            f"app proxy: {sizes.download_mb} MB download",
            "MB/s",
            "apps_download",
            better="higher",
            floor_series="apps_download",
        ),
        Row("app proxy: server CPU per downloaded MB", "ms", "apps_cpu_per_mb", scale=1e3),
        Row(
            "app proxy: WebSocket 1 KiB echo round trip",
            "ms",
            "apps_ws_echo",
            scale=1e3,
            floor_series="apps_ws_echo",
        ),
        Row("app proxy: server CPU per WebSocket echo", "µs", "apps_cpu_per_echo", scale=1e6),
    ]


def _value(results: Results, row: Row, target: str) -> float | None:
    series = row.series
    if target == FLOOR:
        if row.floor_series is None:
            return None
        series = row.floor_series
    values = results.values(series, target)
    if not values:
        return None
    return summarize(values, row.stat) * row.scale


def _format(value: float) -> str:
    if value == 0:
        return "0"
    if value >= 1000:
        return f"{value:,.0f}"
    if value >= 100:
        return f"{value:.0f}"
    if value >= 10:
        return f"{value:.1f}"
    return f"{value:.2f}" if value >= 0.1 else f"{value:.3f}"


def _cell(results: Results, row: Row, target: str) -> str:
    value = _value(results, row, target)
    if value is not None:
        return _format(value)
    series = row.series
    if target == FLOOR:
        if row.floor_series is None:
            return ""
        series = row.floor_series
    return results.notes.get(series, {}).get(target, "n/a")


def _ratio(results: Results, row: Row, target: str) -> str:
    mine, base = _value(results, row, target), _value(results, row, BASELINE)
    if mine is None or base is None or mine == 0 or base == 0:
        return ""
    ratio = base / mine if row.better == "lower" else mine / base
    return f"{ratio:.2f}x"


def markdown_table(results: Results, plan: Plan, targets: list[str]) -> str:
    """The run as a Markdown table: one column per target, then ratios vs jupyter_server."""
    others = [t for t in targets if t not in (FLOOR, BASELINE)]
    header = ["scenario", "unit", *targets, *(f"{t} vs {BASELINE}" for t in others)]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for row in rows_for(plan):
        cells = [row.label, row.unit]
        cells += [_cell(results, row, t) for t in targets]
        cells += [_ratio(results, row, t) for t in others]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def write_json(path: Path, meta: dict[str, Any], results: Results, table: str) -> None:
    """Write the raw results (every sample) with the run's metadata and its table."""
    path.parent.mkdir(parents=True, exist_ok=True)
    document = {"meta": meta, **results.as_json(), "table": table}
    path.write_text(json.dumps(document, indent=1, sort_keys=True, default=str))
