"""Multi-user mode against single-user mode: request rate, p99 and server CPU per request.

Two Junction servers run side by side on the same fixture: one single-user (the token
holder), one with the ``users`` plugin and ``users.default_roles`` as usual. On the
multi-user server 100 accounts each get their own API token and a small file in their home;
100 keep-alive connections of :mod:`bench.load` (its own process), one per user (all on the
server token in single-user mode), send ``GET /api/status`` and a small
``GET /api/contents/<file>`` in turn for a few seconds. The
server's own CPU time (``/proc/<pid>/stat``) over the run, divided by the requests served, is
the CPU per request: what authentication, authorization and the homes check cost.

Run alone with ``python -m bench.scenarios.multiuser [--quick]``, or as the ``multiuser``
group of ``python -m bench``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

from bench.load import in_own_process
from bench.scenarios.common import Context
from junction.testing import ServerProcess

__all__ = ["Measured", "measure", "multiuser_suite"]

ADMIN_TOKEN = "bench-multiuser-admin-token-0123456789"
SMALL = b"x" * 1024


@dataclass(frozen=True)
class Measured:
    """One server's numbers."""

    mode: str
    requests: int
    rps: float
    p50_ms: float
    p99_ms: float
    cpu_us_per_request: float
    errors: int


def _cpu_seconds(pid: int) -> float:
    """User plus system CPU time of a process and its reaped children, in seconds."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    ticks = sum(int(v) for v in fields[11:15])  # utime stime cutime cstime
    return ticks / os.sysconf("SC_CLK_TCK")


def _server(root: Path, data: Path, log: Path, *, multi: bool) -> ServerProcess:
    args = ["--port", "0", "--root-dir", str(root), "--enable", "contents"]
    if multi:
        args += [
            "--enable",
            "users",
            "--set",
            f"database_url=sqlite+aiosqlite:///{data / 'junction.db'}",
        ]
    return ServerProcess(args, log_path=log, token=ADMIN_TOKEN)


async def _tokens(url: str, users: int) -> list[str]:
    """Create ``users`` accounts with a token and a small file in their home each."""
    admin = {"Authorization": f"token {ADMIN_TOKEN}"}
    tokens = []
    async with httpx.AsyncClient(base_url=url, headers=admin, timeout=60) as client:
        for index in range(users):
            name = f"u{index:03d}"
            made = await client.post("/api/users", json={"name": name})
            made.raise_for_status()
            token = (await client.post(f"/api/users/{name}/tokens")).json()["token"]
            saved = await client.put(
                f"/api/contents/home/{name}/small.txt",
                headers={"Authorization": f"token {token}"},
                json={"type": "file", "format": "text", "content": SMALL.decode()},
            )
            saved.raise_for_status()
            tokens.append(token)
    return tokens


async def _load(
    url: str, clients: list[tuple[str, str]], seconds: float, warmup: float, work: Path
) -> tuple[dict[str, Any], float]:
    """Every client (token, file path) is a keep-alive connection of :mod:`bench.load` (in
    its own process, so the client is rarely the bottleneck) sending status and contents
    requests in turn; returns its summary and the load's wall time."""
    plan = [
        {
            "paths": ["/api/status", f"/api/contents/{path}?content=1"],
            "headers": [f"Authorization: token {token}"],
        }
        for token, path in clients
    ]
    plan_file = work / "plan.json"
    plan_file.write_text(json.dumps(plan))
    args = ["--url", url, "--plan", str(plan_file), "--seconds", str(seconds)]
    args += ["--warmup", str(warmup)]
    began = time.perf_counter()
    summary = await in_own_process(args)
    return summary, time.perf_counter() - began


async def measure(users: int, seconds: float, warmup: float, work: Path) -> list[Measured]:
    """Start both servers in turn, load each, and return their numbers."""
    root = work / "root"
    root.mkdir()
    (root / "small.txt").write_bytes(SMALL)
    found: list[Measured] = []
    for multi in (False, True):
        data = work / ("multi" if multi else "single")
        data.mkdir()
        server = _server(root, data, data / "server.log", multi=multi)
        with server:
            url = server.url
            if multi:
                tokens = await _tokens(url, users)
                clients = [(t, f"home/u{i:03d}/small.txt") for i, t in enumerate(tokens)]
            else:
                clients = [(ADMIN_TOKEN, "small.txt")] * users
            cpu_before = _cpu_seconds(server.pid)
            summary, elapsed = await _load(url, clients, seconds, warmup, data)
            cpu = _cpu_seconds(server.pid) - cpu_before
        served = int(summary["requests"])
        # CPU is read over warm-up and measurement: divide by the requests of both.
        total = max(1, round(served * elapsed / max(float(summary["seconds"]), 1e-9)))
        found.append(
            Measured(
                mode="multi-user" if multi else "single-user",
                requests=served,
                rps=float(summary["rps"]),
                p50_ms=float(summary["p50_ms"]),
                p99_ms=float(summary["p99_ms"]),
                cpu_us_per_request=cpu / total * 1e6,
                errors=int(summary["errors"]),
            )
        )
    return found


def _table(rows: list[Measured], users: int) -> str:
    lines = [
        f"| Junction, {users} clients | req/s | p50 ms | p99 ms | server CPU µs/request | errors |",
        "|---|---|---|---|---|---|",
    ]
    for m in rows:
        lines.append(
            f"| {m.mode} | {m.rps:.0f} | {m.p50_ms:.1f} | {m.p99_ms:.1f} "
            f"| {m.cpu_us_per_request:.0f} | {m.errors} |"
        )
    return "\n".join(lines)


async def multiuser_suite(ctx: Context) -> None:
    """The ``multiuser`` group of ``python -m bench``: both modes of Junction alone."""
    seconds = float(ctx.plan.load_seconds)
    work = Path(tempfile.mkdtemp(prefix="multiuser-"))
    try:
        rows = await measure(100, seconds, float(ctx.plan.load_warmup), work)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    for m in rows:
        target = f"junction ({m.mode})"
        ctx.results.add("multiuser_rps", target, m.rps)
        ctx.results.add("multiuser_p99", target, m.p99_ms / 1000)
        ctx.results.add("multiuser_cpu_per_request", target, m.cpu_us_per_request / 1e6)
    print(_table(rows, 100), flush=True)


def main(argv: list[str] | None = None) -> int:
    """Run the comparison alone and print the table."""
    parser = argparse.ArgumentParser(prog="python -m bench.scenarios.multiuser")
    parser.add_argument("--quick", action="store_true", help="5 s of load instead of 20 s")
    parser.add_argument("--users", type=int, default=100)
    args = parser.parse_args(argv)
    seconds, warmup = (5.0, 1.0) if args.quick else (20.0, 3.0)
    work = Path(tempfile.mkdtemp(prefix="multiuser-"))
    try:
        rows = asyncio.run(measure(args.users, seconds, warmup, work))
    finally:
        shutil.rmtree(work, ignore_errors=True)
    print(_table(rows, args.users))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
