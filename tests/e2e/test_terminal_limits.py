"""Terminal WebSocket input limits on a real server: real uvicorn, real PTYs, ``websockets``."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from typing import Any

import anyio
import httpx
import pytest
import websockets
from websockets.asyncio.client import ClientConnection

from junction.plugins.terminals import TERMINALS
from junction.plugins.terminals.manager import PtyTerminals
from junction.testing import TEST_TOKEN, serve_in_thread

pytestmark = [pytest.mark.e2e, pytest.mark.anyio]

AUTH = {"Authorization": f"token {TEST_TOKEN}"}
BASH = ["/bin/bash", "--norc", "--noprofile", "-i"]
MiB = 1 << 20


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, PtyTerminals]]:
    """One in-thread server with the default terminal limits."""
    with serve_in_thread(
        enable=["terminals"],
        root_dir=tmp_path_factory.mktemp("limits"),
        plugin_settings={"terminals": {"shell_command": BASH}},
    ) as (url, app):
        service = app.state.services.get(TERMINALS)
        assert isinstance(service, PtyTerminals)
        yield url, service


def _create(base: str) -> str:
    response = httpx.post(base + "api/terminals", json={}, headers=AUTH)
    assert response.status_code == 200, response.text
    return str(response.json()["name"])


@asynccontextmanager
async def _connect(base: str, name: str) -> AsyncIterator[ClientConnection]:
    url = base.replace("http", "ws", 1) + f"terminals/websocket/{name}"
    async with websockets.connect(url, additional_headers=AUTH, max_size=None) as connection:
        assert json.loads(await connection.recv()) == ["setup", {}]
        yield connection


async def _read_until(connection: ClientConnection, needle: str) -> None:
    seen = ""
    with anyio.fail_after(15):
        while needle not in seen:
            message = json.loads(await connection.recv())
            if message[0] == "stdout":
                seen += message[1]


async def _close_code(connection: ClientConnection) -> tuple[int | None, str]:
    with anyio.fail_after(15):
        try:
            while True:
                await connection.recv()
        except websockets.ConnectionClosed as closed:
            if closed.rcvd is None:
                return None, ""
            return closed.rcvd.code, closed.rcvd.reason


async def _send(connection: ClientConnection, *message: Any) -> None:
    await connection.send(json.dumps(list(message)))


async def test_a_stdin_frame_over_the_limit_closes_with_1009(
    server: tuple[str, PtyTerminals],
) -> None:
    base, service = server
    name = _create(base)
    async with _connect(base, name) as other, _connect(base, name) as big:
        await _send(big, "stdin", "a" * (2 * MiB))
        code, reason = await _close_code(big)
        assert code == 1009
        assert "terminals.max_message_size" in reason
        assert len(service.terminal(name)._pending_input) == 0
        # The terminal and its other clients go on.
        await _send(other, "stdin", "\x15echo ok-$((20+22))\r")
        await _read_until(other, "ok-42")


async def test_pending_input_never_passes_one_mebibyte(server: tuple[str, PtyTerminals]) -> None:
    base, service = server
    name = _create(base)
    terminal = service.terminal(name)
    async with _connect(base, name) as socket:
        # A foreground program that reads nothing: input piles up behind the PTY.
        await _send(socket, "stdin", "sleep 600\r")
        await _read_until(socket, "sleep 600")
        chunk = "b" * (900 * 1024)
        await _send(socket, "stdin", chunk)
        with anyio.fail_after(15):
            while len(terminal._pending_input) < 800 * 1024:
                await anyio.sleep(0.02)
        await _send(socket, "stdin", chunk)
        code, _ = await _close_code(socket)
        assert code == 1013
        assert len(terminal._pending_input) <= MiB
    assert httpx.delete(base + f"api/terminals/{name}", headers=AUTH).status_code == 204
