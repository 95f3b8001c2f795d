"""Cold start and memory: time to the first 200 on ``/api``, server memory idle and with kernels.

Memory is read twice: VmRSS of the server process alone, and the summed PSS of the server's
process tree less its kernels (helper processes such as a reaper count, shared pages count
once across the tree).
"""

from __future__ import annotations

import asyncio
import functools
from pathlib import Path

from bench.channels import handshake
from bench.plan import Plan
from bench.processes import rss_bytes, tree_pss_bytes
from bench.rest import StartedKernel
from bench.results import Results
from bench.scenarios.common import KERNEL_PLUGINS, Context
from bench.servers import JunctionKind, RunningServer, ServerKind, ServerStartError
from bench.targets import ServerTarget

__all__ = ["cold_start", "idle_rss", "kernels_rss"]


def cold_start(
    plan: Plan,
    results: Results,
    kinds: list[ServerKind],
    *,
    token: str,
    root: Path,
    jupyter_path: Path,
) -> None:
    """Start each server from nothing, ``plan.cold_starts`` times, interleaved; stop each.

    Junction failing to start is an error of the run. A server compared against that exits
    on its own while starting (jupyverse sometimes does, from a race in its own start-up) is
    started once more; if it fails again, that is a finding about it, listed after the table.
    """
    for _ in range(plan.cold_starts):
        for kind in kinds:
            attempts = 1 if isinstance(kind, JunctionKind) else 2
            for attempt in range(1, attempts + 1):
                try:
                    server, seconds = RunningServer.launch_ready(
                        kind, token=token, root=root, jupyter_path=jupyter_path
                    )
                except ServerStartError as exc:
                    if attempts == 1:
                        results.error("cold_start", kind.name, str(exc))
                    elif attempt == attempts:
                        first_line = str(exc).splitlines()[0]
                        results.failures.append(f"cold_start / {kind.name}: {first_line}")
                    continue
                server.stop()
                results.add("cold_start", kind.name, seconds)
                break


async def idle_rss(ctx: Context) -> None:
    """RSS and tree PSS of each freshly started server after a few API calls and a short rest."""
    for target in ctx.servers:
        await target.client.http.get("api/status")
        await target.client.http.get("api/kernelspecs")
    await asyncio.sleep(1.0)
    for target in ctx.servers:
        ctx.results.add("rss_idle", target.name, float(rss_bytes(target.server.pid)))
        ctx.results.add("pss_tree_idle", target.name, float(tree_pss_bytes(target.server.pid)))


async def _rss_with_kernels(ctx: Context, target: ServerTarget, count: int) -> None:
    started = await asyncio.gather(
        *(target.start_kernel() for _ in range(count)), return_exceptions=True
    )
    kernels = [k for k in started if isinstance(k, StartedKernel)]
    try:
        for failure in started:
            if isinstance(failure, BaseException):
                raise failure
        for kernel in kernels:
            channel = await target.open(kernel, "v1")
            try:
                await handshake(channel)
            finally:
                await channel.close()
        await asyncio.sleep(1.0)
        ctx.results.add("rss_kernels", target.name, float(rss_bytes(target.server.pid)))
        ctx.results.add("pss_tree_kernels", target.name, float(tree_pss_bytes(target.server.pid)))
    finally:
        for kernel in kernels:
            await target.stop_kernel(kernel)


async def kernels_rss(ctx: Context) -> None:
    """RSS and tree PSS of each server with ``plan.kernels_for_rss`` kernels started
    (concurrently) and connected once."""
    for target in ctx.servers:
        await ctx.attempt(
            "rss_kernels",
            target.name,
            ["rss_kernels", "pss_tree_kernels"],
            functools.partial(_rss_with_kernels, ctx, target, ctx.plan.kernels_for_rss),
            needs=KERNEL_PLUGINS,
        )
