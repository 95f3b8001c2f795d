"""Kernels across replicas: two Junction servers on one PostgreSQL.

The ``replicas`` group starts a PostgreSQL of its own (:mod:`bench.postgres`) and two
Junction servers on it (``kernelspecs`` and ``kernels`` plugins, the same token, cookie
secret and root directory, ``kernels.keep_on_shutdown=true``, the other kernel settings at
their defaults), then measures:

- **through the non-owning replica**: one kernel started on replica A; ``1+1`` round trips
  (v1 WebSocket) and a print loop (stream throughput) through A, the owner, and through B,
  which reaches the kernel's ZeroMQ sockets itself, in alternating turns. With each, the CPU
  time of both server processes per operation (B's heartbeats count against both routes);
- **adoption after SIGKILL**: K more kernels on A, then ``kill -9`` of A's server process
  alone (its kernels keep running); the time until every kernel row in PostgreSQL names B
  (``kernels_kernels.server``) and ``GET /api/kernels`` on B lists them all, polled every
  20 ms (a row names B once B claimed the kernel, B lists it again once it has reattached
  it), and until B then answers an execute on one of them;
- **reattach after a restart**: B, now holding N kernels, stopped with SIGTERM and started
  again (A stays dead, so nobody else adopts them): the reattach as the new server logs it
  ("reattached N kernels left by earlier servers in X s", measured inside the server from
  the start of the kernels plugin), and the time from the new process's launch until
  ``GET /api/kernels`` lists all N and every one answers ``kernel_info_request`` on a new
  WebSocket.

The numbers go into the run's results under ``junction (owning replica)`` and ``junction
(non-owning replica)``; :func:`targets_table` turns them into a table with the targets
(:data:`TARGETS`) and whether each holds, which ``python -m bench`` prints under the main
table.
"""

from __future__ import annotations

import asyncio
import atexit
import contextlib
import dataclasses
import json
import os
import re
import signal
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection, create_async_engine
from sqlalchemy.pool import NullPool

from bench.channels import handshake
from bench.environments import KERNEL_NAME
from bench.plan import QUICK, Plan
from bench.postgres import Postgres
from bench.processes import cpu_seconds
from bench.rest import JupyterClient, StartedKernel
from bench.results import Results, Stat, summarize
from bench.scenarios.common import Context, execute, wait_reply
from bench.scenarios.kernels import PRINT_LOOP
from bench.servers import JunctionKind, RunningServer
from bench.targets import ServerTarget

__all__ = ["OTHER", "OWNER", "TARGETS", "Sizes", "Target", "replicas_suite", "targets_table"]

OWNER = "junction (owning replica)"
OTHER = "junction (non-owning replica)"
COOKIE_SECRET = "bench-replicas-share-this-cookie-secret"

REATTACHED = re.compile(r"reattached (\d+) kernels left by earlier servers in ([0-9.]+) s")
"""The line the kernels plugin logs (at info level) once it reattached a gone server's
kernels, before the server takes requests."""

SERIES = (
    "replicas_rtt",
    "replicas_rtt_cpu",
    "replicas_rtt_cpu_both",
    "replicas_stream",
    "replicas_stream_lost",
    "replicas_stream_cpu",
    "replicas_stream_cpu_both",
    "replicas_adopt_owned",
    "replicas_adopt",
    "replicas_reattach",
    "replicas_restart_ready",
)


@dataclass(frozen=True)
class Sizes:
    """How much the group does."""

    rtt_iterations: int
    stream_lines: int
    rounds: int
    adopt_kernels: int
    restart_kernels: int
    timeout: float

    @classmethod
    def for_plan(cls, plan: Plan) -> Sizes:
        """The issue's sizes in a full run (20 kernels reattached); a quick run is a smoke
        test: two kernels adopted and then reattached, a few dozen round trips."""
        if plan.name == QUICK.name:
            return cls(30, 1_000, 1, 2, 2, 150.0)
        return cls(plan.rtt_iterations, plan.stream_lines, 3, 10, 20, 420.0)


@dataclass(frozen=True)
class Target:
    """A limit one row of the replicas table must stay within."""

    label: str
    unit: str
    series: str
    scale: float
    stat: Stat = "p50"
    compare: Literal["ratio", "value"] = "value"
    """``ratio``: the non-owning replica's value against the owner's, as a slowdown factor;
    ``value``: the non-owning replica's value itself."""
    better: Literal["lower", "higher"] = "lower"
    limit: float | None = None


def _ratio(
    label: str,
    unit: str,
    series: str,
    scale: float,
    stat: Stat = "p50",
    *,
    better: Literal["lower", "higher"] = "lower",
    limit: float | None = None,
) -> Target:
    return Target(label, unit, series, scale, stat, "ratio", better, limit)


TARGETS: tuple[Target, ...] = (
    _ratio("execute `1+1` round trip, v1, p50", "ms", "replicas_rtt", 1e3, limit=1.2),
    _ratio("execute `1+1` round trip, v1, p99", "ms", "replicas_rtt", 1e3, "p99"),
    _ratio("server CPU per round trip, serving replica", "µs", "replicas_rtt_cpu", 1e6),
    _ratio("server CPU per round trip, both", "µs", "replicas_rtt_cpu_both", 1e6),
    _ratio("stream printed lines", "msg/s", "replicas_stream", 1, better="higher", limit=1.2),
    _ratio("stream messages lost", "%", "replicas_stream_lost", 1, "max"),
    _ratio("server CPU per stream message, serving replica", "µs", "replicas_stream_cpu", 1e6),
    _ratio("server CPU per stream message, both", "µs", "replicas_stream_cpu_both", 1e6),
    Target(
        "adoption after SIGKILL: the survivor owns and lists them", "s", "replicas_adopt_owned", 1
    ),
    Target("adoption after SIGKILL: ... and it executes", "s", "replicas_adopt", 1, limit=10),
    Target("reattach after a graceful restart (server log)", "s", "replicas_reattach", 1, limit=2),
    Target("restart: launch to all listed and answering", "s", "replicas_restart_ready", 1),
)


def _value(results: Results, target: Target, name: str) -> float | None:
    values = results.values(target.series, name)
    return summarize(values, target.stat) * target.scale if values else None


def _format(value: float) -> str:
    if value >= 100:
        return f"{value:,.0f}"
    return f"{value:.2f}" if value >= 0.1 else f"{value:.3f}"


def targets_table(results: Results, sizes: Sizes | None = None) -> str:
    """The replicas rows with their targets and whether each holds; empty when the group did
    not run. A ratio is a slowdown factor: above 1 means the non-owning replica is worse."""
    if not any(results.values(t.series, n) for t in TARGETS for n in (OWNER, OTHER)):
        return ""
    title = "replicas"
    if sizes is not None:
        title += f" ({sizes.adopt_kernels} kernels adopted, {sizes.restart_kernels} reattached)"
    lines = [
        f"| {title} | unit | owning replica | non-owning replica | slowdown | target | holds |",
        "|---|---|---|---|---|---|---|",
    ]
    for target in TARGETS:
        mine, theirs = _value(results, target, OWNER), _value(results, target, OTHER)
        measured: float | None = theirs
        slowdown = ""
        if target.compare == "ratio" and mine is not None and theirs is not None:
            if mine and theirs:
                measured = theirs / mine if target.better == "lower" else mine / theirs
                slowdown = f"{measured:.2f}x"
            else:
                measured = None
        if target.limit is None:
            wanted = holds = ""
        elif target.compare == "ratio":
            wanted = f"<= {target.limit:g}x"
            holds = "" if measured is None else ("yes" if measured <= target.limit else "no")
        else:
            wanted = f"< {target.limit:g} {target.unit}"
            holds = "" if measured is None else ("yes" if measured < target.limit else "no")
        if measured is None and target.limit is not None:
            holds = results.notes.get(target.series, {}).get(OTHER, "not measured")
        cells = [
            target.label,
            target.unit,
            "" if mine is None else _format(mine),
            "" if theirs is None else _format(theirs),
            slowdown,
            wanted,
            holds,
        ]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


# -- kernels the servers leave behind ----------------------------------------------------------

_GROUPS: dict[str, tuple[int, int]] = {}
"""Kernel id -> (pid, process group) of every kernel seen in the database: kept kernels
outlive their servers, so the harness kills what is left at the end."""


def _kernel_process(pid: int, kernel_id: str) -> bool:
    try:
        return kernel_id.encode() in Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return False


@atexit.register
def _kill_kernels() -> None:
    for kernel_id, (pid, pgid) in list(_GROUPS.items()):
        if _kernel_process(pid, kernel_id):
            with contextlib.suppress(OSError):
                os.killpg(pgid, signal.SIGKILL)
            with contextlib.suppress(OSError):
                os.kill(pid, signal.SIGKILL)
        _GROUPS.pop(kernel_id, None)


async def _rows(db: AsyncConnection) -> dict[str, str]:
    """Kernel id -> the server its row names; remembers every kernel's process."""
    result = await db.execute(text("SELECT id, server, provisioner FROM kernels_kernels"))
    rows = result.all()
    await db.commit()  # a fresh snapshot at the next look
    for kernel_id, _, provisioner in rows:
        with contextlib.suppress(ValueError, KeyError, TypeError):
            info = json.loads(provisioner)
            _GROUPS[kernel_id] = (int(info["pid"]), int(info["pgid"]))
    return {kernel_id: server for kernel_id, server, _ in rows}


def _names(server: str, replica: RunningServer) -> bool:
    """Whether a row's ``server`` (``host:pid:nonce``) is ``replica``'s process."""
    parts = server.rsplit(":", 2)
    return len(parts) == 3 and parts[1] == str(replica.pid)


# -- the measurements -------------------------------------------------------------------------


@dataclass
class _Replica:
    """A running replica with its API client."""

    target: ServerTarget

    @property
    def server(self) -> RunningServer:
        return self.target.server

    @property
    def client(self) -> JupyterClient:
        return self.target.client

    @classmethod
    async def launch(cls, kind: JunctionKind, ctx: Context, token: str) -> _Replica:
        server, _ = await asyncio.to_thread(
            RunningServer.launch_ready,
            kind,
            token=token,
            root=ctx.fixtures.root,
            jupyter_path=ctx.jupyter_path,
        )
        client = JupyterClient(server.url, token)
        await client.login()
        return cls(ServerTarget(server, client))

    async def close(self) -> None:
        await self.client.http.aclose()
        await asyncio.to_thread(self.server.stop)


def _cpu(replicas: Sequence[_Replica]) -> float:
    return sum(cpu_seconds(r.server.pid) for r in replicas if r.server.process.poll() is None)


async def _rtt_turn(
    results: Results,
    route: _Replica,
    name: str,
    kernel: StartedKernel,
    iterations: int,
    both: Sequence[_Replica],
) -> None:
    channel = await route.target.open(kernel, "v1")
    try:
        await handshake(channel)
        for _ in range(3):
            await execute(channel, "1+1")
        before, serving = _cpu(both), _cpu([route])
        for _ in range(iterations):
            results.add("replicas_rtt", name, (await execute(channel, "1+1")).seconds)
        results.add("replicas_rtt_cpu", name, (_cpu([route]) - serving) / iterations)
        results.add("replicas_rtt_cpu_both", name, (_cpu(both) - before) / iterations)
    finally:
        await channel.close()


async def _stream_turn(
    results: Results,
    route: _Replica,
    name: str,
    kernel: StartedKernel,
    lines: int,
    both: Sequence[_Replica],
) -> None:
    channel = await route.target.open(kernel, "v1")
    try:
        await handshake(channel)
        before, serving = _cpu(both), _cpu([route])
        outcome = await execute(channel, PRINT_LOOP.format(n=lines))
        cpu, cpu_serving = _cpu(both) - before, _cpu([route]) - serving
    finally:
        await channel.close()
    results.add("replicas_stream", name, outcome.streams / outcome.seconds)
    results.add("replicas_stream_lost", name, 100 * (lines - outcome.stream_lines) / lines)
    if outcome.streams:
        results.add("replicas_stream_cpu", name, cpu_serving / outcome.streams)
        results.add("replicas_stream_cpu_both", name, cpu / outcome.streams)


async def _through_either(results: Results, sizes: Sizes, owner: _Replica, other: _Replica) -> None:
    """Round trips and streams on one kernel of ``owner``, through it and through ``other``
    in turn (the order swapped every round)."""
    kernel = await _start_kernel(owner)
    both = (owner, other)
    routes = [(owner, OWNER), (other, OTHER)]
    share = max(1, sizes.rtt_iterations // sizes.rounds)
    try:
        for index in range(sizes.rounds):
            for route, name in routes if index % 2 == 0 else routes[::-1]:
                await _rtt_turn(results, route, name, kernel, share, both)
            for route, name in routes if index % 2 == 0 else routes[::-1]:
                await _stream_turn(results, route, name, kernel, sizes.stream_lines, both)
    finally:
        await owner.client.stop_kernel(kernel)


async def _start_kernel(replica: _Replica, attempts: int = 3) -> StartedKernel:
    """Start a kernel, again when it exited during startup: jupyter_client picks its ports
    by binding port 0 and letting go, so another process may take one before the kernel
    binds it ("Address already in use"), more likely with many starts at once."""
    for attempt in range(attempts):
        try:
            return await replica.client.start_kernel(KERNEL_NAME)
        except RuntimeError as exc:
            if "exited during startup" not in str(exc) or attempt == attempts - 1:
                raise
    raise AssertionError("unreachable")


async def _start_kernels(replica: _Replica, count: int) -> list[StartedKernel]:
    return list(await asyncio.gather(*(_start_kernel(replica) for _ in range(count))))


async def _wait(condition: Callable[[], Awaitable[bool]], what: str, timeout: float) -> None:
    """Poll ``condition`` every 20 ms; RuntimeError naming ``what`` after ``timeout`` s."""
    try:
        async with asyncio.timeout(timeout):
            while not await condition():
                await asyncio.sleep(0.02)
    except TimeoutError:
        raise RuntimeError(f"timed out after {timeout} s waiting for {what}") from None


async def _adoption(
    results: Results, sizes: Sizes, db: AsyncConnection, owner: _Replica, other: _Replica
) -> list[StartedKernel]:
    """SIGKILL ``owner`` with kernels; time until ``other`` owns them all and executes on
    one. Returns the kernels, now ``other``'s."""
    kernels = await _start_kernels(owner, sizes.adopt_kernels)
    rows = await _rows(db)
    if sorted(rows) != sorted(k.id for k in kernels):
        raise RuntimeError(f"rows {sorted(rows)} are not the kernels started")
    killed = time.perf_counter()
    owner.server.process.send_signal(signal.SIGKILL)  # the server process alone
    await asyncio.to_thread(owner.server.process.wait)

    ids = sorted(k.id for k in kernels)

    async def owned() -> bool:
        # A row names the survivor once it claimed the kernel, before it has reattached it;
        # the survivor lists the kernel (as its own) again once it has.
        servers = await _rows(db)
        if sorted(servers) != ids or not all(_names(s, other.server) for s in servers.values()):
            return False
        listed = await other.client.get_json("api/kernels")
        return sorted(k["id"] for k in listed) == ids

    await _wait(owned, "the survivor to own and list every kernel", timeout=120.0)
    results.add("replicas_adopt_owned", OTHER, time.perf_counter() - killed)
    channel = await other.target.open(kernels[0], "v1")
    try:
        outcome = await execute(channel, "1+1")
        if not outcome.idle_seen:
            raise RuntimeError("the adopted kernel did not finish executing")
    finally:
        await channel.close()
    results.add("replicas_adopt", OTHER, time.perf_counter() - killed)
    return kernels


async def _kernel_info(replica: _Replica, kernel: StartedKernel) -> None:
    channel = await replica.target.open(kernel, "v1")
    try:
        while True:
            msg_id = await channel.send("shell", "kernel_info_request", {})
            try:
                async with asyncio.timeout(2.0):
                    await wait_reply(channel, msg_id, "kernel_info_reply")
                return
            except TimeoutError:
                continue  # a request sent before the shell socket connected is lost
    finally:
        await channel.close()


async def _restart(
    results: Results,
    sizes: Sizes,
    replicas: list[_Replica],
    kernels: list[StartedKernel],
    ctx: Context,
    token: str,
) -> _Replica:
    """Bring the last of ``replicas`` to ``sizes.restart_kernels`` kernels, stop it with
    SIGTERM, start it again (logging at info level; it replaces the old one in ``replicas``)
    and time the reattach; returns the new replica."""
    replica = replicas[-1]
    kernels += await _start_kernels(replica, sizes.restart_kernels - len(kernels))
    ids = sorted(k.id for k in kernels)
    listed = sorted(k["id"] for k in await replica.client.get_json("api/kernels"))
    if listed != ids:
        raise RuntimeError(f"{len(listed)} kernels listed before the restart, not {len(ids)}")
    process = replica.server.process
    process.send_signal(signal.SIGTERM)
    await asyncio.to_thread(process.wait, 60)
    await replica.close()
    kind = replica.server.kind
    assert isinstance(kind, JunctionKind)
    relaunched = dataclasses.replace(kind, log_level="info")
    server = await asyncio.to_thread(
        RunningServer.launch,
        relaunched,
        token=token,
        root=ctx.fixtures.root,
        jupyter_path=ctx.jupyter_path,
    )
    restarted = _Replica(ServerTarget(server, JupyterClient(server.url, token)))
    replicas[-1] = restarted
    await asyncio.to_thread(server.wait_ready)
    await restarted.client.login()

    async def all_listed() -> bool:
        models = await restarted.client.get_json("api/kernels")
        return sorted(k["id"] for k in models) == ids

    await _wait(all_listed, "every kernel listed", 60.0)
    await asyncio.gather(*(_kernel_info(restarted, k) for k in kernels))
    results.add("replicas_restart_ready", OTHER, time.perf_counter() - server.started_at)
    found = REATTACHED.search(server.log.read_text(errors="replace"))
    if found is None or int(found.group(1)) != len(kernels):
        raise RuntimeError(f"no reattach of {len(kernels)} kernels logged:\n{server.log_tail()}")
    results.add("replicas_reattach", OTHER, float(found.group(2)))
    return restarted


async def _suite(ctx: Context, sizes: Sizes) -> None:
    token = ctx.servers[0].client.token if ctx.servers else "bench-replicas-token"
    postgres = Postgres()
    replicas: list[_Replica] = []
    try:
        await asyncio.to_thread(postgres.start)
        kind = JunctionKind(
            plugins=["kernelspecs", "kernels"],
            settings=[
                f"database_url={postgres.url}",
                f"cookie_secret={COOKIE_SECRET}",
                "kernels.keep_on_shutdown=true",
                f"kernels.default_kernel_name={KERNEL_NAME}",
            ],
            log_level="info",
        )
        engine = create_async_engine(postgres.url, poolclass=NullPool)
        db = await engine.connect()
        try:
            # Together: migrations run under an advisory lock, so replicas may start at once.
            launched = await asyncio.gather(
                _Replica.launch(kind, ctx, token),
                _Replica.launch(kind, ctx, token),
                return_exceptions=True,
            )
            replicas += [r for r in launched if isinstance(r, _Replica)]
            for failure in launched:
                if isinstance(failure, BaseException):
                    raise failure
            owner, other = replicas
            await _through_either(ctx.results, sizes, owner, other)
            kernels = await _adoption(ctx.results, sizes, db, owner, other)
            restarted = await _restart(ctx.results, sizes, replicas, kernels, ctx, token)
            await _rows(db)
            await asyncio.gather(*(restarted.client.stop_kernel(k) for k in kernels))
        finally:
            with contextlib.suppress(Exception):
                await _rows(db)
            await db.close()
            await engine.dispose()
            for replica in replicas:
                await replica.close()
    finally:
        _kill_kernels()
        await asyncio.to_thread(postgres.close)


async def replicas_suite(ctx: Context) -> None:
    """The ``replicas`` group of ``python -m bench``: Junction alone, on a PostgreSQL of its
    own; see the module docstring."""
    sizes = Sizes.for_plan(ctx.plan)
    await ctx.attempt("replicas", OTHER, SERIES, lambda: _suite(ctx, sizes), timeout=sizes.timeout)
