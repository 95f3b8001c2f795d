"""``python -m bench``: install, start, measure, stop, report.

The run: make sure the comparison servers' environments exist; write the shared kernelspec;
make the fixture tree; time cold starts (each server started and stopped in turn); start every
server once more and keep it up; run the scenario groups, each interleaving its targets; stop
everything; print the Markdown table and write every sample to
``build/bench/results-<timestamp>.json``. Exits 1 when a measurement that should work failed.
"""

from __future__ import annotations

import argparse
import asyncio
import functools
import os
import secrets
import shutil
import signal
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, NoReturn

import httpx

from bench import environments
from bench.environments import BUILD_DIR, REPO, comparison_environments
from bench.fixtures import Fixtures
from bench.machine import describe_machine, load_average
from bench.plan import FULL, QUICK, Plan
from bench.processes import kill_descendants
from bench.report import markdown_table, write_json
from bench.rest import JupyterClient
from bench.results import Results
from bench.scenarios import (
    apps,
    collaboration,
    contents,
    kernels,
    multiuser,
    replicas,
    startup,
    terminals,
    throughput,
)
from bench.scenarios.common import Context
from bench.servers import (
    JunctionKind,
    JupyterServerKind,
    JupyverseKind,
    RunningServer,
    ServerKind,
    stop_all_servers,
)
from bench.targets import FLOOR, FloorTarget, ServerTarget

__all__ = ["main"]

GROUPS = (
    "cold",
    "memory",
    "kernel_start",
    "kernels",
    "contents",
    "load",
    "fanout",
    "terminals",
    "collaboration",
    "multiuser",
    "apps",
    "replicas",
)
FULL_ONLY = ("replicas",)
"""Groups ``--quick`` leaves out unless named in ``--only``: the replicas group starts a
PostgreSQL and two more servers (15-45 s), which would take bench-quick past three minutes."""
SERVER_NAMES = ("jupyter_server", "jupyverse", "junction")


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m bench",
        description="Benchmark Junction against jupyter_server and jupyverse "
        "(and the kernel over ZeroMQ, the floor).",
    )
    parser.add_argument("--quick", action="store_true", help="small sizes, under three minutes")
    parser.add_argument(
        "--servers",
        default=",".join(SERVER_NAMES),
        help=f"comma-separated subset of {', '.join(SERVER_NAMES)}",
    )
    parser.add_argument(
        "--only",
        default=None,
        help=f"comma-separated subset of {', '.join(GROUPS)} (default: all; with --quick, "
        f"all but {', '.join(FULL_ONLY)})",
    )
    parser.add_argument(
        "--no-compression",
        action="store_true",
        help="do not offer permessage-deflate on kernel WebSockets (browsers offer it)",
    )
    parser.add_argument(
        "--junction-profile",
        help="run Junction with this profile (e.g. full, with the UI plugins) instead of the "
        "API plugins the scenarios use",
    )
    parser.add_argument("--output", type=Path, help="results JSON path")
    return parser


def _kinds(names: list[str], junction_profile: str | None) -> list[ServerKind]:
    envs = {env.name: env for env in comparison_environments()}
    kinds: list[ServerKind] = []
    for name in names:
        if name == "jupyter_server":
            kinds.append(JupyterServerKind(envs["jupyter_server"]))
        elif name == "jupyverse":
            kinds.append(JupyverseKind(envs["jupyverse"]))
        elif name == "junction":
            kinds.append(JunctionKind(profile=junction_profile))
        else:
            raise SystemExit(f"unknown server {name!r}; choose from {', '.join(SERVER_NAMES)}")
    return kinds


def _interrupt(signum: int, frame: object) -> NoReturn:
    raise KeyboardInterrupt


_CLEANUPS: list[Callable[[], object]] = []


def _clean_up() -> None:
    """Stop every server and kernel the run started and remove its temporary directories.

    Synchronous, so it also runs when an interrupt cut the event loop short.
    """
    stop_all_servers()
    kill_descendants()  # floor kernels, a load generator in flight
    while _CLEANUPS:
        _CLEANUPS.pop()()


def _step(title: str) -> float:
    print(f"- {title}", flush=True)
    return time.perf_counter()


async def _healthy(target: ServerTarget) -> bool:
    try:
        response = await target.client.http.get("api/status", timeout=5.0)
    except httpx.HTTPError:
        return False
    return response.status_code == 200


async def _restart_broken(ctx: Context, after: str) -> None:
    """Restart any server a scenario left unable to answer ``/api/status``."""
    for target in ctx.servers:
        if await _healthy(target):
            continue
        print(f"  {target.name} stopped answering after {after}; restarting it", flush=True)
        ctx.results.failures.append(f"{after} / {target.name}: server left broken, restarted")
        old = target.server
        old.stop()
        server = RunningServer.launch(
            old.kind, token=old.token, root=ctx.fixtures.root, jupyter_path=ctx.jupyter_path
        )
        server.wait_ready()
        await target.client.http.aclose()
        target.server = server
        target.client = JupyterClient(server.url, old.token)
        await target.client.login()


async def _run_group(title: str, group: Callable[[Context], Awaitable[None]], ctx: Context) -> None:
    started = _step(title)
    await group(ctx)
    await _restart_broken(ctx, title)
    print(f"  ({time.perf_counter() - started:.1f} s)", flush=True)


async def _measure(
    args: argparse.Namespace,
    plan: Plan,
    kinds: list[ServerKind],
    groups: set[str],
    results: Results,
    meta: dict[str, Any],
) -> None:
    started = _step("environments")
    log = BUILD_DIR / "install.log"
    installs = {}
    for env in comparison_environments():
        if any(getattr(k, "env", None) == env for k in kinds):
            installs[env.name] = round(environments.ensure(env, log), 1)
    jupyter_path = environments.kernelspec_path(REPO / ".venv" / "bin" / "python")
    meta["versions"] = {kind.name: kind.version() for kind in kinds}
    meta["versions"]["ipykernel"] = environments.version_of(
        REPO / ".venv" / "bin" / "python", "ipykernel"
    )
    meta["commands"] = {kind.name: kind.describe() for kind in kinds}
    meta["install_seconds"] = installs
    print(f"  ({time.perf_counter() - started:.1f} s)", flush=True)

    started = _step("fixtures")
    sizes = [plan.listing_small] + ([plan.listing_large] if plan.listing_large else [])
    fixtures = Fixtures.create(sizes, plan.big_file_mb if "contents" in groups else 0)
    _CLEANUPS.append(fixtures.remove)
    print(f"  ({time.perf_counter() - started:.1f} s)", flush=True)
    token = secrets.token_hex(16)
    runtime = Path(tempfile.mkdtemp(prefix="floor-", dir=BUILD_DIR))
    _CLEANUPS.append(functools.partial(shutil.rmtree, runtime, ignore_errors=True))
    os.environ["JUPYTER_RUNTIME_DIR"] = str(runtime)
    os.environ["JUPYTER_PLATFORM_DIRS"] = "1"
    targets: list[ServerTarget] = []
    floor = FloorTarget(jupyter_path, fixtures.root)
    try:
        if "cold" in groups:
            begun = _step(f"cold start x{plan.cold_starts}")
            startup.cold_start(
                plan, results, kinds, token=token, root=fixtures.root, jupyter_path=jupyter_path
            )
            print(f"  ({time.perf_counter() - begun:.1f} s)", flush=True)
        begun = _step("starting servers")
        for kind in kinds:
            server, _ = RunningServer.launch_ready(
                kind, token=token, root=fixtures.root, jupyter_path=jupyter_path
            )
            client = JupyterClient(server.url, token)
            targets.append(ServerTarget(server, client, compression=not args.no_compression))
            await client.login()
        print(f"  ({time.perf_counter() - begun:.1f} s)", flush=True)
        for kind in kinds:
            if isinstance(kind, JunctionKind):
                meta["junction_profile"] = kind.profile
                meta["junction_plugins"] = kind.plugins
                meta["junction_missing"] = kind.missing
                if kind.missing:
                    print(f"  junction: not built yet: {', '.join(kind.missing)}", flush=True)
        ctx = Context(
            plan, results, targets, floor, fixtures, BUILD_DIR / "errors.log", jupyter_path
        )
        if "memory" in groups:
            await _run_group("server RSS, idle", startup.idle_rss, ctx)
            await _run_group(
                f"server RSS with {plan.kernels_for_rss} kernels", startup.kernels_rss, ctx
            )
        if "kernel_start" in groups:
            await _run_group(f"kernel start x{plan.kernel_starts}", kernels.kernel_start, ctx)
        if "kernels" in groups:
            await _run_group("round trips, streams, fan-out", kernels.kernel_suite, ctx)
        if "contents" in groups:
            await _run_group("listings", contents.listings, ctx)
            await _run_group("big file", contents.big_file, ctx)
        if "load" in groups:
            await _run_group("requests per second", throughput.request_rates, ctx)
        if "fanout" in groups:
            await _run_group(f"{plan.fanout_clients} clients on one kernel", kernels.fanout, ctx)
        if "terminals" in groups:
            await _run_group("terminal echo and output", terminals.terminal_suite, ctx)
        if "collaboration" in groups:
            await _run_group("collaboration rooms", collaboration.collaboration_suite, ctx)
        if "multiuser" in groups:
            await _run_group("100 users against one", multiuser.multiuser_suite, ctx)
        if "apps" in groups:
            await _run_group(
                "app proxies: small GETs, download, WebSocket echo", apps.apps_suite, ctx
            )
        if "replicas" in groups:
            await _run_group(
                "kernels across two replicas on PostgreSQL", replicas.replicas_suite, ctx
            )
        for target in targets:
            try:
                await target.client.stop_all_kernels()
            except Exception as exc:
                results.errors.append(f"cleanup on {target.name}: {exc!r}")
    finally:
        begun = _step("cleaning up")
        await floor.stop_all()
        for target in targets:
            await target.client.http.aclose()
        _clean_up()
        print(f"  ({time.perf_counter() - begun:.1f} s)", flush=True)


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark; returns the exit status."""
    args = _parser().parse_args(argv)
    plan = QUICK if args.quick else FULL
    kinds = _kinds([n.strip() for n in args.servers.split(",") if n.strip()], args.junction_profile)
    if args.only is None:
        groups = set(GROUPS) - (set(FULL_ONLY) if args.quick else set())
    else:
        groups = {g.strip() for g in args.only.split(",") if g.strip()}
    unknown = groups - set(GROUPS)
    if unknown:
        raise SystemExit(f"unknown groups {sorted(unknown)}; choose from {', '.join(GROUPS)}")
    # Both raise KeyboardInterrupt at once, wherever the loop is; _clean_up() then runs.
    signal.signal(signal.SIGTERM, _interrupt)
    signal.signal(signal.SIGINT, _interrupt)
    stamp = datetime.now(UTC).strftime("%Y%m%d-%H%M%S")
    output = args.output or BUILD_DIR / f"results-{stamp}.json"
    BUILD_DIR.mkdir(parents=True, exist_ok=True)
    # Server logs and tracebacks are kept for the latest run only.
    shutil.rmtree(BUILD_DIR / "logs", ignore_errors=True)
    (BUILD_DIR / "errors.log").write_text("")
    results = Results()
    meta: dict[str, Any] = {
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "plan": plan.name,
        "plan_sizes": vars(plan),
        "machine": describe_machine(),
        "websocket_compression": not args.no_compression,
    }
    print(f"bench ({plan.name}): {', '.join(k.name for k in kinds)} + floor", flush=True)
    meta["load_average_start"] = load_average()
    if meta["load_average_start"] > 0.5:
        print(f"  note: load average {meta['load_average_start']}: the machine is busy", flush=True)
    started = time.perf_counter()
    try:
        asyncio.run(_measure(args, plan, kinds, groups, results, meta))
    except KeyboardInterrupt:
        _clean_up()
        print("interrupted; servers stopped", file=sys.stderr)
        return 130
    meta["wall_seconds"] = round(time.perf_counter() - started, 1)
    meta["load_average_end"] = load_average()
    targets = [FLOOR, *(k.name for k in kinds)]
    table = markdown_table(results, plan, targets)
    replica_targets = replicas.targets_table(results, replicas.Sizes.for_plan(plan))
    if replica_targets:
        table += "\n\n" + replica_targets
    write_json(output, meta, results, table)
    output.with_suffix(".md").write_text(table + "\n")
    print()
    print(table)
    print()
    print(f"versions: {meta['versions']}")
    if meta.get("junction_missing"):
        print(f"junction plugins not built yet: {', '.join(meta['junction_missing'])}")
    print(f"wall clock: {meta['wall_seconds']} s; raw results: {output}")
    if results.failures:
        print("\nserver failures (findings, not harness errors):")
        for failure in results.failures:
            print(f"  {failure}")
    if results.errors:
        print("\nerrors (see build/bench/errors.log):", file=sys.stderr)
        for error in results.errors:
            print(f"  {error}", file=sys.stderr)
        return 1
    return 0
