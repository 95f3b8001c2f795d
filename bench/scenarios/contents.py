"""Contents scenarios: directory listings and one big file through ``/files/`` and
``/api/contents``.

A listing is ``GET /api/contents/<dir>?content=1``, timed to the last byte and checked for the
right number of entries. The first page is ``GET /api/contents/<dir>?content=1&limit=500`` on
servers that paginate (a three-file probe directory listed with ``limit=1`` tells); the others
get "n/a: no pagination". The first page in directory order adds ``order=directory`` (servers
whose probe page comes back with a name as its ``next`` cursor ignore it: "n/a").
"""

from __future__ import annotations

import functools
import time

from bench.rest import Unavailable
from bench.scenarios.common import CONTENTS_PLUGINS, Context
from bench.targets import ServerTarget

__all__ = ["PAGE_SIZE", "big_file", "listings"]

PAGE_SIZE = 500


async def _list_once(ctx: Context, target: ServerTarget, count: int, series: str) -> None:
    directory = ctx.fixtures.listings[count]
    started = time.perf_counter()
    body = await target.client.get_json(f"api/contents/{directory}", content=1)
    elapsed = time.perf_counter() - started
    entries = len(body.get("content") or [])
    if entries != count:
        raise RuntimeError(f"listing has {entries} entries, expected {count}")
    ctx.results.add(series, target.name, elapsed)


async def _paginates(ctx: Context, target: ServerTarget) -> bool:
    response = await target.client.http.get(
        f"api/contents/{ctx.fixtures.probe_dir}", params={"content": 1, "limit": 1}
    )
    return response.status_code == 200 and len(response.json().get("content") or []) == 1


async def _orders_by_directory(ctx: Context, target: ServerTarget) -> bool:
    response = await target.client.http.get(
        f"api/contents/{ctx.fixtures.probe_dir}",
        params={"content": 1, "limit": 1, "order": "directory"},
    )
    if response.status_code != 200:
        return False
    body = response.json()
    following = (body.get("pagination") or {}).get("next")
    return following is not None and following != body["content"][0]["name"]


async def _first_page(
    ctx: Context, target: ServerTarget, count: int, series: str, order: str = "name"
) -> None:
    directory = ctx.fixtures.listings[count]
    if not await _paginates(ctx, target):
        raise Unavailable("no pagination")
    params: dict[str, str | int] = {"content": 1, "limit": PAGE_SIZE}
    if order != "name":
        if not await _orders_by_directory(ctx, target):
            raise Unavailable("no directory order")
        params["order"] = order
    started = time.perf_counter()
    response = await target.client.http.get(f"api/contents/{directory}", params=params)
    elapsed = time.perf_counter() - started
    if response.status_code == 404:
        raise Unavailable(f"GET /api/contents/{directory}: 404")
    response.raise_for_status()
    entries = len(response.json().get("content") or [])
    if entries != PAGE_SIZE:
        raise RuntimeError(f"first page has {entries} entries, expected {PAGE_SIZE}")
    ctx.results.add(series, target.name, elapsed)


async def listings(ctx: Context) -> None:
    """List each listing directory: its first page (where the server paginates) by name,
    then in directory order, then whole.
    The large directory once, the others ``listing_rounds`` times, servers interleaved."""
    for count in sorted(ctx.fixtures.listings):
        series = f"list_{count}"
        large = count > 10_000
        rounds = 1 if large else ctx.plan.listing_rounds
        # A server may need minutes for 100,000 entries; two are enough to call it slow.
        timeout = 120.0 if large else None
        for _ in range(rounds):
            for target in ctx.servers:
                await ctx.attempt(
                    f"{series}_page",
                    target.name,
                    [f"{series}_page"],
                    functools.partial(_first_page, ctx, target, count, f"{series}_page"),
                    needs=CONTENTS_PLUGINS,
                )
                await ctx.attempt(
                    f"{series}_page_dir",
                    target.name,
                    [f"{series}_page_dir"],
                    functools.partial(
                        _first_page, ctx, target, count, f"{series}_page_dir", "directory"
                    ),
                    needs=CONTENTS_PLUGINS,
                )
                await ctx.attempt(
                    series,
                    target.name,
                    [series],
                    functools.partial(_list_once, ctx, target, count, series),
                    needs=CONTENTS_PLUGINS,
                    timeout=timeout,
                )


async def _download(ctx: Context, target: ServerTarget, how: str) -> None:
    name = ctx.fixtures.big_file
    assert name is not None
    expected = ctx.fixtures.big_file_bytes
    started = time.perf_counter()
    if how == "files":
        size = await target.client.download(f"files/{name}")
    else:
        size = await target.client.download(
            f"api/contents/{name}", content=1, type="file", format="text"
        )
    elapsed = time.perf_counter() - started
    if size < expected:
        raise RuntimeError(f"got {size} bytes, expected at least {expected}")
    ctx.results.add(f"{how}_big", target.name, (expected / (1 << 20)) / elapsed)


async def big_file(ctx: Context) -> None:
    """Download the big file through ``/files/`` and through ``/api/contents``."""
    if ctx.fixtures.big_file is None:
        return
    for how in ("files", "contents"):
        for _ in range(ctx.plan.big_file_rounds):
            for target in ctx.servers:
                await ctx.attempt(
                    f"{how}_big",
                    target.name,
                    [f"{how}_big"],
                    functools.partial(_download, ctx, target, how),
                    needs=CONTENTS_PLUGINS,
                )
