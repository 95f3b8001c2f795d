"""A keep-alive HTTP/1.1 load generator, run in its own process: ``python -m bench.load``.

Each of ``--connections`` connections sends one ``GET`` at a time and the next as soon as the
response is complete (no pipelining). Requests finishing during ``--warmup`` are not counted.
With ``--plan FILE`` (a JSON list of ``{"paths": [...], "headers": [...]}``) each entry is
one connection of its own, sending its paths in turn with its headers (a user's token).
Prints one JSON object: requests, seconds, requests per second, latency p50/p99 (ms), errors.
Written on raw asyncio protocols (uvloop when installed) so that the client, not the server,
is rarely the bottleneck on a small machine.
"""

from __future__ import annotations

import argparse
import asyncio
import functools
import json
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, cast
from urllib.parse import urlsplit

__all__ = ["in_own_process", "main", "run", "run_plan"]


@dataclass
class Stats:
    """What all connections measured."""

    measure_from: float
    stop_at: float
    latencies: list[float] = field(default_factory=list)
    errors: int = 0
    statuses: dict[int, int] = field(default_factory=dict)


class Connection(asyncio.Protocol):
    """One keep-alive connection sending its requests in turn, in a loop."""

    def __init__(self, requests: list[bytes], stats: Stats, done: asyncio.Future[None]) -> None:
        self.requests = requests
        self.turn = 0
        self.stats = stats
        self.done = done
        self.buffer = bytearray()
        self.transport: asyncio.Transport | None = None
        self.sent_at = 0.0
        self.body_start = -1
        self.length = -1
        self.chunked = False
        self.status = 0

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        """Start sending."""
        self.transport = cast(asyncio.Transport, transport)  # uvloop's is not a subclass
        self._send()

    def _send(self) -> None:
        assert self.transport is not None
        self.buffer.clear()
        self.body_start = self.length = -1
        self.chunked = False
        self.sent_at = time.perf_counter()
        self.transport.write(self.requests[self.turn % len(self.requests)])
        self.turn += 1

    def _parse_head(self) -> bool:
        end = self.buffer.find(b"\r\n\r\n")
        if end < 0:
            return False
        head = bytes(self.buffer[:end]).decode("latin-1").split("\r\n")
        self.status = int(head[0].split(" ", 2)[1])
        self.body_start = end + 4
        for line in head[1:]:
            name, _, value = line.partition(":")
            lowered = name.strip().lower()
            if lowered == "content-length":
                self.length = int(value.strip())
            elif lowered == "transfer-encoding" and "chunked" in value.lower():
                self.chunked = True
        return True

    def _complete(self) -> bool:
        if self.chunked:
            return self.buffer.endswith(b"0\r\n\r\n")
        if self.length < 0:
            return False
        return len(self.buffer) - self.body_start >= self.length

    def data_received(self, data: bytes) -> None:
        """Collect the response; when complete, record it and send the next request."""
        self.buffer += data
        if self.body_start < 0 and not self._parse_head():
            return
        if not self._complete():
            return
        now = time.perf_counter()
        stats = self.stats
        if now >= stats.measure_from:
            stats.latencies.append(now - self.sent_at)
            stats.statuses[self.status] = stats.statuses.get(self.status, 0) + 1
            if self.status != 200:
                stats.errors += 1
        if now < stats.stop_at:
            self._send()
        else:
            assert self.transport is not None
            self.transport.close()

    def connection_lost(self, exc: Exception | None) -> None:
        """Finished (or dropped: the caller reconnects while time remains)."""
        if not self.done.done():
            self.done.set_result(None)


def _request(url: str, path: str, headers: list[str]) -> tuple[str, int, bytes]:
    parts = urlsplit(url)
    host = parts.hostname or "127.0.0.1"
    port = parts.port or 80
    lines = [f"GET {path} HTTP/1.1", "Accept: */*", *headers]
    if not any(h.lower().startswith("host:") for h in headers):
        lines.insert(1, f"Host: {host}:{port}")
    return host, port, ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")


async def _connection(host: str, port: int, requests: list[bytes], stats: Stats) -> None:
    loop = asyncio.get_running_loop()
    while time.perf_counter() < stats.stop_at:
        done: asyncio.Future[None] = loop.create_future()
        try:
            await loop.create_connection(
                functools.partial(Connection, requests, stats, done), host, port
            )
        except OSError:
            stats.errors += 1
            await asyncio.sleep(0.01)
            continue
        try:
            await asyncio.wait_for(done, max(0.0, stats.stop_at - time.perf_counter()) + 10)
        except TimeoutError:
            stats.errors += 1  # a response that never completed
            return


async def run(
    url: str, path: str, headers: list[str], connections: int, seconds: float, warmup: float
) -> dict[str, float | int | dict[int, int]]:
    """Load ``url + path`` and summarize."""
    plan = [{"paths": [path], "headers": headers}] * connections
    return await run_plan(url, plan, seconds, warmup)


async def run_plan(
    url: str, plan: list[dict[str, list[str]]], seconds: float, warmup: float
) -> dict[str, float | int | dict[int, int]]:
    """Load ``url`` with one connection per entry of ``plan`` (its ``paths`` in turn, with
    its ``headers``) and summarize."""
    host, port = "", 0
    connections = []
    for entry in plan:
        requests = []
        for path in entry["paths"]:
            host, port, request = _request(url, path, entry.get("headers", []))
            requests.append(request)
        connections.append(requests)
    start = time.perf_counter()
    stats = Stats(measure_from=start + warmup, stop_at=start + warmup + seconds)
    await asyncio.gather(*(_connection(host, port, requests, stats) for requests in connections))
    elapsed = time.perf_counter() - stats.measure_from
    latencies = sorted(stats.latencies)
    count = len(latencies)

    def pick(q: float) -> float:
        return latencies[min(count - 1, int(q * count))] * 1000 if count else float("nan")

    return {
        "requests": count,
        "seconds": elapsed,
        "rps": count / elapsed if elapsed > 0 else 0.0,
        "p50_ms": pick(0.50),
        "p99_ms": pick(0.99),
        "errors": stats.errors,
        "statuses": stats.statuses,
    }


async def in_own_process(args: list[str]) -> dict[str, Any]:
    """Run ``python -m bench.load`` with ``args`` in a process of its own (so the client has a
    core of its own) and return its summary; RuntimeError when it fails."""
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "bench.load",
        *args,
        cwd=Path(__file__).resolve().parent.parent,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    try:
        out, err = await process.communicate()
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()
    if process.returncode != 0:
        raise RuntimeError(f"load generator failed: {err.decode(errors='replace')[-500:]}")
    summary: dict[str, Any] = json.loads(out)
    return summary


def main(argv: list[str] | None = None) -> int:
    """Parse arguments, run the load, print the JSON summary."""
    parser = argparse.ArgumentParser(prog="python -m bench.load", description=__doc__)
    parser.add_argument("--url", required=True, help="server base URL, e.g. http://127.0.0.1:8888")
    parser.add_argument("--path", help="request path, e.g. /api/status")
    parser.add_argument("--plan", help="JSON file: one connection per entry (paths, headers)")
    parser.add_argument("--header", action="append", default=[], help="'Name: value'")
    parser.add_argument("--connections", type=int, default=50)
    parser.add_argument("--seconds", type=float, default=3.0)
    parser.add_argument("--warmup", type=float, default=0.5)
    args = parser.parse_args(argv)
    if (args.path is None) == (args.plan is None):
        parser.error("give --path or --plan")
    if args.plan is not None:
        with open(args.plan) as file:
            plan = json.load(file)
        coroutine = run_plan(args.url, plan, args.seconds, args.warmup)
    else:
        coroutine = run(
            args.url, args.path, args.header, args.connections, args.seconds, args.warmup
        )
    try:
        import uvloop
    except ImportError:
        summary = asyncio.run(coroutine)
    else:
        summary = uvloop.run(coroutine)
    json.dump(summary, sys.stdout)
    return 0


if __name__ == "__main__":
    sys.exit(main())
