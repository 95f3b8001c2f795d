"""Apps: what the proxy costs against talking to the app directly.

Junction alone (the other servers have no such proxy): the scenario starts its own Junction
with the apps plugin and the header-echo test app (``tests/apps/echo_app.py``), logs in to
the app host with a one-time code, and measures each number twice: ``direct`` (the app's
loopback port) and ``proxied`` (``{id}.apps.localhost`` through the apps listener).

- ``apps_small``: seconds per small GET (``/``, 2 bytes), sequential, one connection.
- ``apps_download``: MB/s of a 100 MB streamed download.
- ``apps_ws_echo``: seconds per WebSocket round trip of a 1 KiB binary message.
"""

from __future__ import annotations

import asyncio
import json
import sys
import tempfile
import time
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx
from websockets.asyncio.client import connect

from junction.testing import TEST_TOKEN, ServerProcess, free_port

__all__ = ["apps_suite", "measure"]

AUTH = {"Authorization": f"token {TEST_TOKEN}"}
ECHO = Path(__file__).parents[2] / "tests" / "apps" / "echo_app.py"
MB = 1 << 20


async def _small(client: httpx.AsyncClient, headers: dict[str, str], count: int) -> list[float]:
    times = []
    for _ in range(count):
        start = time.perf_counter()
        response = await client.get("/", headers=headers)
        assert response.status_code == 200
        times.append(time.perf_counter() - start)
    return times


async def _download(client: httpx.AsyncClient, headers: dict[str, str], size: int) -> float:
    start = time.perf_counter()
    received = 0
    async with client.stream("GET", f"/bytes?n={size}", headers=headers) as response:
        async for chunk in response.aiter_raw():
            received += len(chunk)
    assert received == size
    return size / MB / (time.perf_counter() - start)


async def _echo(port: int, host: str, headers: dict[str, str], count: int) -> list[float]:
    times = []
    payload = b"x" * 1024
    async with connect(
        f"ws://{host}/ws", host="127.0.0.1", port=port, additional_headers=headers
    ) as ws:
        await ws.recv()  # the subprotocol report
        for _ in range(count):
            start = time.perf_counter()
            await ws.send(payload)
            await ws.recv()
            times.append(time.perf_counter() - start)
    return times


async def measure(small: int = 500, download_mb: int = 100, echoes: int = 500) -> dict[str, Any]:
    """Start a server and an app, run the measurements both ways, stop; the raw numbers."""
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        apps_port = free_port()
        args = ["--profile", "none", "--enable", "apps", "--port", str(free_port())]
        args += ["--root-dir", tmp, "--set", f"apps.port={apps_port}"]
        args += ["--set", f"database_url=sqlite+aiosqlite:///{root / 'junction.db'}"]
        with ServerProcess(args, log_path=root / "server.log") as server:
            async with httpx.AsyncClient(base_url=server.url, headers=AUTH, timeout=60) as api:
                created = await api.post(
                    "api/apps", json={"command": [sys.executable, str(ECHO), "{port}"]}
                )
                app = created.json()
                while app["status"] == "starting":
                    await asyncio.sleep(0.1)
                    app = (await api.get(f"api/apps/{app['id']}")).json()
                handover = await api.get(f"apps/{app['id']}/")
            location = urlsplit(handover.headers["location"])
            host = location.netloc
            async with httpx.AsyncClient(
                base_url=f"http://127.0.0.1:{apps_port}", timeout=120
            ) as proxied:
                exchange = await proxied.get(
                    f"{location.path}?{location.query}", headers={"Host": host}
                )
                cookie = exchange.headers["set-cookie"].split(";")[0]
                via = {"Host": host, "Cookie": cookie}
                # the app's own port, from the proxied request's view of it
                await _small(proxied, via, 5)
                seen = (await proxied.get("/headers", headers=via)).json()
                assert seen["path"] == "/headers"
                direct_port = await _app_port(server, app["id"])
                async with httpx.AsyncClient(
                    base_url=f"http://127.0.0.1:{direct_port}", timeout=120
                ) as direct:
                    numbers = {
                        "small_direct": await _small(direct, {}, small),
                        "small_proxied": await _small(proxied, via, small),
                        "download_direct": await _download(direct, {}, download_mb * MB),
                        "download_proxied": await _download(proxied, via, download_mb * MB),
                        "echo_direct": await _echo(
                            direct_port, f"127.0.0.1:{direct_port}", {}, echoes
                        ),
                        "echo_proxied": await _echo(apps_port, host, {"Cookie": cookie}, echoes),
                    }
    return numbers


async def _app_port(server: ServerProcess, app_id: str) -> int:
    """The app's loopback port, read from its process's command line."""
    import psutil

    for child in psutil.Process(server.pid).children(recursive=True):
        cmdline = child.cmdline()
        if str(ECHO) in cmdline:
            return int(cmdline[-1])
    raise RuntimeError(f"app {app_id} has no process")


def _p50(values: list[float]) -> float:
    return sorted(values)[len(values) // 2]


async def apps_suite(ctx: Any) -> None:
    """The apps group: direct and proxied numbers under ``app-direct`` and ``junction``."""
    numbers = await measure()
    ctx.results.add("apps_small", "app-direct", *numbers["small_direct"])
    ctx.results.add("apps_small", "junction", *numbers["small_proxied"])
    ctx.results.add("apps_download", "app-direct", numbers["download_direct"])
    ctx.results.add("apps_download", "junction", numbers["download_proxied"])
    ctx.results.add("apps_ws_echo", "app-direct", *numbers["echo_direct"])
    ctx.results.add("apps_ws_echo", "junction", *numbers["echo_proxied"])


if __name__ == "__main__":  # a quick look: python -m bench.scenarios.apps
    result = asyncio.run(measure())
    summary = {
        key: (_p50(value) if isinstance(value, list) else value) for key, value in result.items()
    }
    json.dump(summary, sys.stdout, indent=1)
    print()
