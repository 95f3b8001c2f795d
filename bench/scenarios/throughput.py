"""Requests per second and p99 latency under concurrent keep-alive load.

The load comes from :mod:`bench.load` in its own process (one core for the client, one for
the server on a two-core machine): ``--connections`` keep-alive connections, each sending the
next request as soon as the previous response is complete.
"""

from __future__ import annotations

import functools

from bench.load import in_own_process
from bench.rest import Unavailable
from bench.scenarios.common import CONTENTS_PLUGINS, Context
from bench.targets import ServerTarget

__all__ = ["ENDPOINTS", "request_rates"]

ENDPOINTS = {"status": "api/status", "contents": "api/contents/{small}?content=1"}


async def _load_once(ctx: Context, target: ServerTarget, endpoint: str) -> None:
    path = "/" + ENDPOINTS[endpoint].format(small=ctx.fixtures.small_file)
    check = await target.client.http.get(path.lstrip("/"))
    if check.status_code == 404:
        raise Unavailable(f"GET {path.split('?')[0]}: 404")
    check.raise_for_status()
    args = [
        "--url",
        target.client.url,
        "--path",
        path,
        "--connections",
        str(ctx.plan.load_connections),
        "--seconds",
        str(ctx.plan.load_seconds),
        "--warmup",
        str(ctx.plan.load_warmup),
    ]
    for name, value in target.client.auth_headers().items():
        args += ["--header", f"{name}: {value}"]
    summary = await in_own_process(args)
    if summary["errors"] or not summary["requests"]:
        raise RuntimeError(f"load errors: {summary}")
    ctx.results.add(f"rps_{endpoint}", target.name, summary["rps"])
    ctx.results.add(f"p99_{endpoint}", target.name, summary["p99_ms"] / 1000)
    ctx.results.add(f"p50_{endpoint}", target.name, summary["p50_ms"] / 1000)


async def request_rates(ctx: Context) -> None:
    """``GET /api/status`` and a small ``GET /api/contents/<file>``, servers interleaved."""
    for endpoint in ENDPOINTS:
        needs = CONTENTS_PLUGINS if endpoint == "contents" else ()
        for _ in range(ctx.plan.load_rounds):
            for target in ctx.servers:
                await ctx.attempt(
                    f"load_{endpoint}",
                    target.name,
                    [f"rps_{endpoint}", f"p99_{endpoint}", f"p50_{endpoint}"],
                    functools.partial(_load_once, ctx, target, endpoint),
                    needs=needs,
                )
