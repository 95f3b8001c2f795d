"""Kernel scenarios, run on every server and on the floor (ZeroMQ, no server in between).

- kernel start: from the start request to the ``kernel_info_reply`` on a new connection;
- kernel start, prespawned: the same on a second Junction server keeping one kernel ready
  (``kernels.prespawn_count=1``), each start once the pool has refilled;
- execute round trip: ``1+1`` until its ``execute_reply`` and IOPub ``idle`` are both in,
  over the JSON and the v1 WebSocket protocols;
- stream throughput: many small flushed prints (messages/s, and the server's CPU time per
  message), and one big output (MB/s);
- fan-out: many clients on one kernel, all receiving a print loop (messages/s per client).
"""

from __future__ import annotations

import asyncio
import dataclasses
import functools
import re
import time
from typing import Any

from bench.channels import handshake
from bench.environments import KERNEL_NAME
from bench.messages import execute_content
from bench.processes import cpu_seconds
from bench.rest import JupyterClient
from bench.scenarios.common import (
    KERNEL_PLUGINS,
    Context,
    ExecuteOutcome,
    execute,
    finish,
    wait_reply,
)
from bench.servers import JunctionKind, RunningServer
from bench.targets import KernelTarget, ServerTarget

__all__ = ["fanout", "kernel_start", "kernel_suite"]

PRINT_LOOP = "for i in range({n}):\n    print(i, flush=True)"
BIG_OUTPUT = "import sys\nsys.stdout.write('x' * {size})\nsys.stdout.flush()"


POOL_READY = re.compile(r"kernel pool: kernel \S+ \(\S+\) is ready")
"""The line Junction logs (at info level) when a prespawned kernel is ready."""


async def _start_once(
    ctx: Context, target: KernelTarget, series: str | None = "kernel_start"
) -> None:
    started = time.perf_counter()
    kernel = await target.start_kernel()
    try:
        channel = await target.open(kernel, target.protocols()[-1])
        try:
            msg_id = await channel.send("shell", "kernel_info_request", {})
            await wait_reply(channel, msg_id, "kernel_info_reply")
            if series is not None:
                ctx.results.add(series, target.name, time.perf_counter() - started)
        finally:
            await channel.close()
    finally:
        await target.stop_kernel(kernel)


async def _pool_ready(server: RunningServer, count: int, timeout: float = 60.0) -> None:
    """Wait until Junction has logged ``count`` ready pool kernels."""
    deadline = time.perf_counter() + timeout
    while len(POOL_READY.findall(server.log.read_text(errors="replace"))) < count:
        if server.process.poll() is not None or time.perf_counter() > deadline:
            raise RuntimeError(f"no prespawned kernel ready:\n{server.log_tail()}")
        await asyncio.sleep(0.02)


async def _prespawned(ctx: Context, target: ServerTarget) -> None:
    """Kernel starts on a second Junction that keeps one kernel of the bench spec ready.

    It logs at info level, which is how the harness knows the pool has refilled; each start
    waits for that, so every sample is a hand-out from a full pool. One start, not counted,
    warms the new server up first (the servers the other rows measure are warm too).
    """
    kind = target.server.kind
    assert isinstance(kind, JunctionKind)
    pooled = dataclasses.replace(
        kind,
        settings=["kernels.prespawn_count=1", f"kernels.default_kernel_name={KERNEL_NAME}"],
        log_level="info",
    )
    token = target.client.token
    server, _ = await asyncio.to_thread(
        RunningServer.launch_ready,
        pooled,
        token=token,
        root=ctx.fixtures.root,
        jupyter_path=ctx.jupyter_path,
    )
    client = JupyterClient(server.url, token)
    try:
        await client.login()
        # Same column as the server it stands for.
        pool_target = ServerTarget(server, client, compression=target.compression)
        for index in range(ctx.plan.kernel_starts + 1):
            await _pool_ready(server, index + 1)
            await _start_once(ctx, pool_target, "kernel_start_prespawned" if index else None)
    finally:
        await client.http.aclose()
        await asyncio.to_thread(server.stop)


async def kernel_start(ctx: Context) -> None:
    """Start a kernel and get its ``kernel_info_reply``; interleaved, then stop it."""
    for _ in range(ctx.plan.kernel_starts):
        for target in ctx.kernel_targets():
            await ctx.attempt(
                "kernel_start",
                target.name,
                ["kernel_start"],
                functools.partial(_start_once, ctx, target),
                needs=KERNEL_PLUGINS,
            )
    for target in ctx.servers:
        if isinstance(target.server.kind, JunctionKind):
            await ctx.attempt(
                "kernel_start_prespawned",
                target.name,
                ["kernel_start_prespawned"],
                functools.partial(_prespawned, ctx, target),
                needs=KERNEL_PLUGINS,
            )
        else:
            ctx.results.note("kernel_start_prespawned", target.name, "n/a: no prespawn pool")


async def _rtt_turn(ctx: Context, target: KernelTarget, kernel: Any, iterations: int) -> None:
    for protocol in target.protocols():
        channel = await target.open(kernel, protocol)
        try:
            await handshake(channel)
            for _ in range(3):
                await execute(channel, "1+1")
            for _ in range(iterations):
                outcome = await execute(channel, "1+1")
                ctx.results.add(f"rtt_{protocol}", target.name, outcome.seconds)
        finally:
            await channel.close()


async def _lines_turn(ctx: Context, target: KernelTarget, kernel: Any) -> None:
    lines = ctx.plan.stream_lines
    channel = await target.open(kernel, target.protocols()[-1])
    try:
        await handshake(channel)
        pid = target.pid
        cpu_before = cpu_seconds(pid) if pid else 0.0
        outcome = await execute(channel, PRINT_LOOP.format(n=lines))
        cpu_after = cpu_seconds(pid) if pid else 0.0
    finally:
        await channel.close()
    # A subscriber slower than the kernel loses messages (ZeroMQ drops at its high-water
    # mark): the rate counts what arrived, and the loss has its own row.
    ctx.results.add("stream_lines", target.name, outcome.streams / outcome.seconds)
    ctx.results.add("stream_lost", target.name, 100 * (lines - outcome.stream_lines) / lines)
    if pid and outcome.streams:
        ctx.results.add("cpu_per_msg", target.name, (cpu_after - cpu_before) / outcome.streams)


async def _big_output_turn(ctx: Context, target: KernelTarget, kernel: Any) -> None:
    megabytes = ctx.plan.big_output_mb
    size = megabytes << 20
    channel = await target.open(kernel, target.protocols()[-1])
    try:
        await handshake(channel)
        pid = target.pid
        cpu_before = cpu_seconds(pid) if pid else 0.0
        outcome = await execute(channel, BIG_OUTPUT.format(size=size))
        cpu_after = cpu_seconds(pid) if pid else 0.0
    finally:
        await channel.close()
    if outcome.stream_bytes < size:
        raise RuntimeError(f"received {outcome.stream_bytes} of {size} output bytes")
    ctx.results.add("big_output", target.name, megabytes / outcome.seconds)
    if pid:
        ctx.results.add("cpu_per_mb", target.name, (cpu_after - cpu_before) / megabytes)


async def _fanout_turn(ctx: Context, target: KernelTarget, kernel: Any) -> None:
    plan = ctx.plan
    protocol = target.protocols()[-1]
    channels = [await target.open(kernel, protocol) for _ in range(plan.fanout_clients)]
    try:
        for channel in channels:
            await handshake(channel)
        sent: asyncio.Future[tuple[str, float]] = asyncio.get_running_loop().create_future()

        async def listen(index: int) -> ExecuteOutcome:
            msg_id, started = await sent
            return await finish(channels[index], msg_id, started, reply=index == 0)

        listeners = [asyncio.create_task(listen(i)) for i in range(len(channels))]
        started = time.perf_counter()
        msg_id = await channels[0].send(
            "shell", "execute_request", execute_content(PRINT_LOOP.format(n=plan.fanout_lines))
        )
        sent.set_result((msg_id, started))
        outcomes = await asyncio.gather(*listeners)
        ctx.results.add("fanout", target.name, *(o.streams / o.seconds for o in outcomes))
        worst = min(o.stream_lines for o in outcomes)
        ctx.results.add(
            "fanout_lost", target.name, 100 * (plan.fanout_lines - worst) / plan.fanout_lines
        )
    finally:
        await asyncio.gather(*(channel.close() for channel in channels))


async def _fanout_on_new_kernel(ctx: Context, target: KernelTarget) -> None:
    kernel = await target.start_kernel()
    try:
        await _fanout_turn(ctx, target, kernel)
    finally:
        await target.stop_kernel(kernel)


async def fanout(ctx: Context) -> None:
    """Many clients on one new kernel per target. Run last: a server that cannot hold that
    many WebSockets may be left broken."""
    for target in ctx.kernel_targets():
        await ctx.attempt(
            "fanout",
            target.name,
            ["fanout", "fanout_lost"],
            functools.partial(_fanout_on_new_kernel, ctx, target),
            needs=KERNEL_PLUGINS,
        )


async def kernel_suite(ctx: Context) -> None:
    """Round trips and streams on one kernel per target, targets interleaved."""
    plan = ctx.plan
    kernels: dict[str, Any] = {}
    targets = ctx.kernel_targets()
    for target in targets:
        series = ["rtt_json", "rtt_v1", "rtt_zmq", "stream_lines", "stream_lost", "cpu_per_msg"]
        series += ["big_output", "cpu_per_mb"]
        kernel = await ctx.attempt(
            "kernel_suite", target.name, series, target.start_kernel, needs=KERNEL_PLUGINS
        )
        if kernel is not None:
            kernels[target.name] = kernel
    try:
        share = max(1, plan.rtt_iterations // plan.rtt_rounds)
        for _ in range(plan.rtt_rounds):
            for target in targets:
                if target.name in kernels:
                    await ctx.attempt(
                        "rtt",
                        target.name,
                        [f"rtt_{p}" for p in target.protocols()],
                        functools.partial(_rtt_turn, ctx, target, kernels[target.name], share),
                    )
        for _ in range(plan.stream_rounds):
            for target in targets:
                if target.name in kernels:
                    await ctx.attempt(
                        "stream_lines",
                        target.name,
                        ["stream_lines", "stream_lost", "cpu_per_msg"],
                        functools.partial(_lines_turn, ctx, target, kernels[target.name]),
                    )
            for target in targets:
                if target.name in kernels:
                    await ctx.attempt(
                        "big_output",
                        target.name,
                        ["big_output", "cpu_per_mb"],
                        functools.partial(_big_output_turn, ctx, target, kernels[target.name]),
                    )
    finally:
        for target in targets:
            if target.name in kernels:
                try:
                    await target.stop_kernel(kernels[target.name])
                except Exception as exc:  # the server may be the one that broke
                    ctx.results.errors.append(f"stopping kernel on {target.name}: {exc!r}")
