"""Apps: what an app proxy costs against talking to the app directly.

The scenario runs its own servers: a Junction with the apps plugin running the header-echo
test app (``tests/apps/echo_app.py``) on its own host, and jupyter_server with
jupyter-server-proxy (from the comparison environment) reaching the same app at
``/proxy/{port}/``. It measures each number three ways, turn by turn: the app's loopback port
(the ``floor`` column of the table), through Junction's apps listener (``{id}.apps.localhost``
after the one-time code hand-over) and through jupyter-server-proxy.

- ``apps_small``: seconds per small GET (``/``, 2 bytes), sequential, one connection.
- ``apps_rps``: small GETs per second over ``load_connections`` keep-alive connections
  (:mod:`bench.load` in its own process); ``apps_cpu_per_request``: the proxy's CPU per GET.
- ``apps_download``: MB/s of a streamed download (100 MB in the full plan);
  ``apps_cpu_per_mb``: the proxy's CPU per MB.
- ``apps_ws_echo``: seconds per WebSocket round trip of a 1 KiB binary message;
  ``apps_cpu_per_echo``: the proxy's CPU per round trip.

Run alone with ``python -m bench.scenarios.apps [--quick]`` (prints the p50s as JSON).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import tempfile
import time
import traceback
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx
from websockets.asyncio.client import connect

from bench.environments import BUILD_DIR, REPO, comparison_environments, ensure, kernelspec_path
from bench.load import in_own_process
from bench.plan import FULL, QUICK, Plan
from bench.processes import cpu_seconds
from bench.results import Results
from bench.servers import JupyterServerKind, RunningServer
from bench.targets import FLOOR
from junction.testing import TEST_TOKEN, ServerProcess, free_port

__all__ = ["SERIES", "Sizes", "apps_suite", "measure"]

ECHO = REPO / "tests" / "apps" / "echo_app.py"
MB = 1 << 20
SERIES = (
    "apps_small",
    "apps_rps",
    "apps_cpu_per_request",
    "apps_download",
    "apps_cpu_per_mb",
    "apps_ws_echo",
    "apps_cpu_per_echo",
)
_SERIES_OF = {
    "small": ("apps_small",),
    "rps": ("apps_rps", "apps_cpu_per_request"),
    "download": ("apps_download", "apps_cpu_per_mb"),
    "ws_echo": ("apps_ws_echo", "apps_cpu_per_echo"),
}
JUNCTION = "junction"
JUPYTER_SERVER = "jupyter_server"


@dataclass(frozen=True)
class Sizes:
    """How much each measurement does, per target."""

    small: int
    download_mb: int
    echoes: int
    connections: int
    load_seconds: float
    load_warmup: float
    rounds: int

    @classmethod
    def for_plan(cls, plan: Plan) -> Sizes:
        """The full plan's 100 MB download and 500 round trips; a quick run does a tenth to a
        fifth of that (20 connections, half a second of load)."""
        if plan.name == QUICK.name:
            return cls(50, 10, 100, 20, 0.5, 0.2, 1)
        return cls(500, 100, 500, plan.load_connections, plan.load_seconds, plan.load_warmup, 2)


@dataclass
class Route:
    """One way to reach the app: where to connect, what to send, whose CPU to count."""

    name: str
    url: str
    """Where to connect (``http://127.0.0.1:PORT``)."""
    prefix: str
    """The path prefix in front of the app's paths (``/proxy/{port}`` or empty)."""
    headers: dict[str, str] = field(default_factory=dict)
    pid: int | None = None
    """The proxy's process (None: no proxy)."""

    def cpu(self) -> float:
        """The proxy's CPU seconds so far (0 without a proxy)."""
        return cpu_seconds(self.pid) if self.pid else 0.0


async def _small(route: Route, client: httpx.AsyncClient, count: int) -> list[float]:
    times = []
    for _ in range(count):
        start = time.perf_counter()
        response = await client.get(f"{route.prefix}/", headers=route.headers)
        assert response.status_code == 200, response.text[:200]
        times.append(time.perf_counter() - start)
    return times


async def _load(route: Route, sizes: Sizes) -> tuple[float, float]:
    """Requests per second of small GETs and the proxy's CPU seconds per request."""
    args = ["--url", route.url, "--path", f"{route.prefix}/"]
    args += ["--connections", str(sizes.connections), "--seconds", str(sizes.load_seconds)]
    args += ["--warmup", str(sizes.load_warmup)]
    for name, value in route.headers.items():
        args += ["--header", f"{name}: {value}"]
    cpu_before = route.cpu()
    summary = await in_own_process(args)
    cpu = route.cpu() - cpu_before
    if summary["errors"] or not summary["requests"]:
        raise RuntimeError(f"load errors through {route.name}: {summary}")
    # The warm-up's requests cost CPU too: spread it over all the time the load ran.
    total = summary["rps"] * (sizes.load_seconds + sizes.load_warmup)
    return summary["rps"], cpu / total


async def _download(route: Route, client: httpx.AsyncClient, size: int) -> tuple[float, float]:
    """MB/s and the proxy's CPU seconds per MB."""
    cpu_before = route.cpu()
    start = time.perf_counter()
    received = 0
    async with client.stream("GET", f"{route.prefix}/bytes?n={size}", headers=route.headers) as r:
        assert r.status_code == 200, (await r.aread())[:200]
        async for chunk in r.aiter_raw():
            received += len(chunk)
    seconds = time.perf_counter() - start
    assert received == size, f"{received} of {size} bytes through {route.name}"
    return size / MB / seconds, (route.cpu() - cpu_before) / (size / MB)


async def _echo(route: Route, count: int) -> tuple[list[float], float]:
    """Seconds per 1 KiB round trip and the proxy's CPU seconds per round trip."""
    parts = urlsplit(route.url)
    host = route.headers.get("Host", parts.netloc)
    headers = {k: v for k, v in route.headers.items() if k != "Host"}
    times = []
    payload = b"x" * 1024
    async with connect(
        f"ws://{host}{route.prefix}/ws",
        host=parts.hostname,
        port=parts.port,
        additional_headers=headers,
        max_size=None,
    ) as ws:
        await ws.recv()  # the subprotocol report
        cpu_before = route.cpu()
        for _ in range(count):
            start = time.perf_counter()
            await ws.send(payload)
            await ws.recv()
            times.append(time.perf_counter() - start)
        cpu = route.cpu() - cpu_before
    return times, cpu / count


async def _app_port(server: ServerProcess) -> int:
    """The app's loopback port, read from its process's command line."""
    import psutil

    for child in psutil.Process(server.pid).children(recursive=True):
        cmdline = child.cmdline()
        if str(ECHO) in cmdline:
            return int(cmdline[-1])
    raise RuntimeError("the echo app has no process")


async def _junction_route(server: ServerProcess, apps_port: int) -> Route:
    """Create the echo app, wait until ready, and log in to its host with a one-time code."""
    auth = {"Authorization": f"token {TEST_TOKEN}"}
    async with httpx.AsyncClient(base_url=server.url, headers=auth, timeout=60) as api:
        created = await api.post(
            "api/apps", json={"command": [sys.executable, str(ECHO), "{port}"]}
        )
        created.raise_for_status()
        app = created.json()
        deadline = time.monotonic() + 60
        while app["status"] == "starting" and time.monotonic() < deadline:
            await asyncio.sleep(0.1)
            app = (await api.get(f"api/apps/{app['id']}")).json()
        if app["status"] != "ready":
            raise RuntimeError(f"the echo app did not start: {app}")
        handover = await api.get(f"apps/{app['id']}/")
    location = urlsplit(handover.headers["location"])
    url = f"http://127.0.0.1:{apps_port}"
    async with httpx.AsyncClient(base_url=url, timeout=30) as client:
        exchange = await client.get(
            f"{location.path}?{location.query}", headers={"Host": location.netloc}
        )
    cookie = exchange.headers["set-cookie"].split(";")[0]
    headers = {"Host": location.netloc, "Cookie": cookie}
    return Route(JUNCTION, url, "", headers, pid=server.pid)


@dataclass
class JupyterServerWithProxy(JupyterServerKind):
    """jupyter_server from the comparison environment with jupyter-server-proxy loaded."""

    server_proxy: bool = True


async def measure(sizes: Sizes, results: Results) -> None:
    """Start Junction, the app and jupyter_server; measure every route in turns; stop."""
    env = next(e for e in comparison_environments() if e.name == JUPYTER_SERVER)
    ensure(env, BUILD_DIR / "install.log")
    jupyter_path = kernelspec_path(REPO / ".venv" / "bin" / "python")
    with tempfile.TemporaryDirectory(prefix="apps-", dir=BUILD_DIR) as tmp:
        root = Path(tmp)
        apps_port = free_port()
        args = ["--profile", "none", "--enable", "apps", "--port", str(free_port())]
        args += ["--ip", "127.0.0.1", "--root-dir", tmp, "--set", f"apps.port={apps_port}"]
        args += ["--set", f"database_url=sqlite+aiosqlite:///{root / 'junction.db'}"]
        # Both servers start at once; jupyter_server is waited for once Junction is up.
        jupyter = RunningServer.launch(
            JupyterServerWithProxy(env), token=TEST_TOKEN, root=root, jupyter_path=jupyter_path
        )
        try:
            with ServerProcess(args, log_path=root / "server.log") as server:
                jupyter.wait_ready()
                junction = await _junction_route(server, apps_port)
                app_port = await _app_port(server)
                routes = [
                    Route(FLOOR, f"http://127.0.0.1:{app_port}", ""),
                    junction,
                    Route(
                        JUPYTER_SERVER,
                        jupyter.url.rstrip("/"),
                        f"/proxy/{app_port}",
                        {"Authorization": f"token {TEST_TOKEN}"},
                        pid=jupyter.pid,
                    ),
                ]
                await _measure_routes(routes, sizes, results)
        finally:
            jupyter.stop()


async def _measure_routes(routes: list[Route], sizes: Sizes, results: Results) -> None:
    failed: set[tuple[str, str]] = set()

    async def attempt(route: Route, what: str, run: Callable[[], Awaitable[None]]) -> None:
        if (route.name, what) in failed:
            return
        try:
            async with asyncio.timeout(120):
                await run()
        except Exception as exc:
            failed.add((route.name, what))
            text = f"fails: {type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}"
            results.failures.append(f"apps {what} / {route.name}: {text}")
            for series in _SERIES_OF[what]:
                results.note(series, route.name, "fails")

    for _ in range(sizes.rounds):
        for route in routes:
            async with httpx.AsyncClient(base_url=route.url, timeout=120) as client:

                async def small(route: Route = route, client: httpx.AsyncClient = client) -> None:
                    await _small(route, client, 5)  # warm up the connection and the proxy
                    results.add("apps_small", route.name, *await _small(route, client, sizes.small))

                async def load(route: Route = route) -> None:
                    rps, cpu = await _load(route, sizes)
                    results.add("apps_rps", route.name, rps)
                    if route.pid:
                        results.add("apps_cpu_per_request", route.name, cpu)

                async def download(
                    route: Route = route, client: httpx.AsyncClient = client
                ) -> None:
                    rate, cpu = await _download(route, client, sizes.download_mb * MB)
                    results.add("apps_download", route.name, rate)
                    if route.pid:
                        results.add("apps_cpu_per_mb", route.name, cpu)

                async def echo(route: Route = route) -> None:
                    times, cpu = await _echo(route, sizes.echoes)
                    results.add("apps_ws_echo", route.name, *times)
                    if route.pid:
                        results.add("apps_cpu_per_echo", route.name, cpu)

                await attempt(route, "small", small)
                await attempt(route, "rps", load)
                await attempt(route, "download", download)
                await attempt(route, "ws_echo", echo)


async def apps_suite(ctx: Any) -> None:
    """The ``apps`` group of ``python -m bench``: the app direct (under the floor column),
    through Junction and through jupyter-server-proxy; jupyverse has no app proxy."""
    for series in SERIES:
        ctx.results.note(series, "jupyverse", "n/a: no app proxy")
    try:
        await measure(Sizes.for_plan(ctx.plan), ctx.results)
    except Exception as exc:  # the servers or the app did not start: the harness's fault
        with ctx.log.open("a") as out:
            out.write(f"--- apps\n{traceback.format_exc()}\n")
        ctx.results.errors.append(f"apps: {type(exc).__name__}: {exc}")
        for series in SERIES:
            for target in (FLOOR, JUNCTION, JUPYTER_SERVER):
                ctx.results.note(series, target, "ERROR")


def _p50(values: list[float]) -> float:
    return sorted(values)[len(values) // 2]


if __name__ == "__main__":
    parser = argparse.ArgumentParser(prog="python -m bench.scenarios.apps")
    parser.add_argument("--quick", action="store_true", help="the quick plan's sizes")
    options = parser.parse_args()
    found = Results()
    asyncio.run(measure(Sizes.for_plan(QUICK if options.quick else FULL), found))
    summary = {
        f"{series} {target}": _p50(values)
        for series, targets in found.samples.items()
        for target, values in targets.items()
    }
    json.dump({"p50": summary, "failures": found.failures}, sys.stdout, indent=1)
    print()
