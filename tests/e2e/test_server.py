"""The ``junction`` command on a real socket: startup banner, auth, logs, shutdown."""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import websockets
from fastapi import APIRouter, WebSocket
from websockets.typing import Origin

from junction import Plugin
from junction.testing import TEST_TOKEN, ServerProcess, serve_in_thread

pytestmark = pytest.mark.e2e


@pytest.fixture
def server(tmp_path: Path) -> Iterator[ServerProcess]:
    process = ServerProcess(
        ["--profile", "none", "--port", "0", "--root-dir", str(tmp_path)],
        log_path=tmp_path / "server.log",
    )
    process.start()
    yield process
    process.stop()


def test_banner_masks_the_operators_token_and_api_answers(server: ServerProcess) -> None:
    assert "/api?token=...\n" in server.log()
    assert TEST_TOKEN not in server.log()
    response = httpx.get(server.url + "api", headers={"Authorization": f"token {TEST_TOKEN}"})
    assert response.status_code == 200
    assert "version" in response.json()


def test_sigterm_stops_gracefully(server: ServerProcess) -> None:
    assert server.stop(signal.SIGTERM) == 0
    assert "Application shutdown complete" in server.log()


def test_sigint_stops_gracefully(server: ServerProcess) -> None:
    assert server.stop(signal.SIGINT) == 0
    assert "Application shutdown complete" in server.log()


def test_token_never_appears_in_log_lines(tmp_path: Path) -> None:
    server = ServerProcess(
        ["--profile", "none", "--port", "0", "--log-level", "debug"],
        log_path=tmp_path / "debug.log",
    ).start()
    httpx.get(server.url + "api/status", params={"token": TEST_TOKEN})
    httpx.get(server.url + "api/status", params={"token": "wrong-guess-token"})
    server.stop()
    log = server.log()
    assert "GET /api/status?token=[secret]" in log
    assert TEST_TOKEN not in log  # the banner masks a token given with --token too
    assert "wrong-guess-token" not in log


def test_shutdown_endpoint_stops_the_server(server: ServerProcess) -> None:
    response = httpx.post(
        server.url + "api/shutdown", headers={"Authorization": f"token {TEST_TOKEN}"}
    )
    assert response.status_code == 200
    assert server.process is not None
    assert server.process.wait(30) == 0


def test_slow_headers_are_cut_off(tmp_path: Path) -> None:
    with ServerProcess(
        ["--profile", "none", "--port", "0", "--set", "header_timeout=0.5"],
        log_path=tmp_path / "server.log",
    ) as process:
        host, port = process.url.removeprefix("http://").rstrip("/").split(":")
        with socket.create_connection((host, int(port)), timeout=10) as sock:
            sock.sendall(b"GET /api HTTP/1.1\r\nHost: localhost\r\n")
            started = time.monotonic()
            assert sock.recv(1024) == b""  # the server closed the connection
            assert time.monotonic() - started < 5


def test_port_in_use_moves_to_the_next_one(tmp_path: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        with ServerProcess(
            ["--profile", "none", "--port", str(port)], log_path=tmp_path / "server.log"
        ) as process:
            assert process.url != f"http://127.0.0.1:{port}/"


def _ws_plugin() -> Plugin:
    router = APIRouter()

    @router.websocket("/api/echo-ws")
    async def echo(websocket: WebSocket) -> None:
        await websocket.accept()
        await websocket.send_text(await websocket.receive_text())
        await websocket.close()

    return Plugin(name="wsecho", description="test", routers=[router])


@pytest.mark.anyio
async def test_websocket_origin_and_auth_are_checked() -> None:
    with serve_in_thread(plugins=[_ws_plugin()]) as (url, _app):
        ws_url = url.replace("http", "ws") + "api/echo-ws"
        auth = {"Authorization": f"token {TEST_TOKEN}"}
        async with websockets.connect(ws_url, additional_headers=auth) as ws:
            await ws.send("hi")
            assert await ws.recv() == "hi"
        async with websockets.connect(f"{ws_url}?token={TEST_TOKEN}") as ws:
            await ws.send("query")
            assert await ws.recv() == "query"
        with pytest.raises(websockets.InvalidStatus) as unauth:
            await websockets.connect(ws_url)
        assert unauth.value.response.status_code == 403
        with pytest.raises(websockets.InvalidStatus) as foreign:
            await websockets.connect(
                ws_url, additional_headers=auth, origin=Origin("http://evil.example")
            )
        assert foreign.value.response.status_code == 403
        assert b"WebSocket origin http://evil.example is not allowed" in foreign.value.response.body


def _banner_of(tmp_path: Path, env: dict[str, str]) -> tuple[ServerProcess, str]:
    """Start ``junction`` without ``--token`` (ServerProcess always passes one)."""
    log_path = tmp_path / "banner.log"
    command = [sys.executable, "-m", "junction.cli", "--no-browser", "--profile", "none"]
    command += ["--port", "0", "--root-dir", str(tmp_path)]
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            command,
            stdout=log,
            stderr=subprocess.STDOUT,
            env={**os.environ, "PYTHONUNBUFFERED": "1", **env},
            start_new_session=True,
        )
    holder = ServerProcess([], log_path=log_path)
    holder.process = process
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        assert process.poll() is None, holder.log()
        found = re.search(r"(http://127\.0\.0\.1:\d+)/api\?token=(\S+)", holder.log())
        if found:
            holder.url = found.group(1) + "/"
            return holder, found.group(2)
        time.sleep(0.05)
    holder.stop()
    raise AssertionError(f"no banner:\n{holder.log()}")


def test_banner_prints_a_generated_token_which_works(tmp_path: Path) -> None:
    env = {"JUPYTER_RUNTIME_DIR": str(tmp_path / "runtime")}
    holder, shown = _banner_of(tmp_path, env)
    try:
        assert re.fullmatch(r"[0-9a-f]{48}", shown)
        response = httpx.get(holder.url + "api/status", headers={"Authorization": f"token {shown}"})
        assert response.status_code == 200
    finally:
        holder.stop()


def test_banner_masks_a_token_from_the_environment(tmp_path: Path) -> None:
    secret = "operator-chosen-token-from-env"
    env = {"JUNCTION_TOKEN": secret, "JUPYTER_RUNTIME_DIR": str(tmp_path / "runtime")}
    holder, shown = _banner_of(tmp_path, env)
    try:
        assert shown == "..."
        assert secret not in holder.log()
        response = httpx.get(
            holder.url + "api/status", headers={"Authorization": f"token {secret}"}
        )
        assert response.status_code == 200
    finally:
        holder.stop()
