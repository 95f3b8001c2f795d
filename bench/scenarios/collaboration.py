"""Collaboration: opening a big notebook into a room, update fan-out, memory per room.

Two servers, the same protocol (``PUT /api/collaboration/session/{path}``, then the room's
y-protocols WebSocket): Junction (contents + collaboration, SQLite store in a temporary
directory) under ``junction``, and jupyter_server with jupyter-collaboration (from the
comparison environment, only its ``jupyter_server_ydoc`` and ``jupyter_server_fileid``
extensions loaded) under ``jupyter_server``. Each gets its own server here, so the other
groups' servers keep their plugin and extension sets.

- ``collab_open``: seconds from the session PUT to the first client's SyncStep2 for a
  5 MB, 500-cell notebook (load from disk, build the document, store it).
- ``collab_fanout``: seconds from one client's keystroke update to its arrival at each of
  ``clients`` (20) other clients, per receiver.
- ``collab_rss_room``: server RSS growth per open room of that notebook, MB.
"""

from __future__ import annotations

import asyncio
import json
import secrets
import sys
import tempfile
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import psutil
import websockets
from pycrdt import Array, Doc, Text

from bench.environments import REPO, comparison_environments, kernelspec_path
from bench.servers import JupyterServerKind, RunningServer
from junction.plugins.collaboration.protocol import (
    SYNC,
    SYNC_STEP1,
    SYNC_STEP2,
    SYNC_UPDATE,
    Reader,
    sync_message,
)
from junction.testing import TEST_TOKEN, ServerProcess

__all__ = ["SERVERS", "big_notebook", "collaboration_suite", "measure"]

SERVERS = ("junction", "jupyter_server")
"""The servers measured, under these names in the results."""


NOTEBOOK_CELLS = 500


def big_notebook(cells: int = NOTEBOOK_CELLS, megabytes: float = 5.0) -> dict[str, Any]:
    """A notebook of ``cells`` code cells whose outputs add up to about ``megabytes``."""
    per_cell = int(megabytes * (1 << 20) / cells)
    line = "x" * 79 + "\n"
    text = line * max(1, per_cell // len(line))
    return {
        "cells": [
            {
                "cell_type": "code",
                "id": f"cell-{i}",
                "source": f"print({i})",
                "metadata": {},
                "execution_count": i + 1,
                "outputs": [{"output_type": "stream", "name": "stdout", "text": text}],
            }
            for i in range(cells)
        ],
        "metadata": {},
        "nbformat": 4,
        "nbformat_minor": 5,
    }


class _Client:
    """A minimal room client: syncs, then counts updates."""

    def __init__(self, connection: websockets.ClientConnection) -> None:
        self.connection = connection
        self.doc: Doc[Any] = Doc()
        self.synced = asyncio.Event()
        self.updates = 0
        self.arrived: asyncio.Event = asyncio.Event()

    async def run(self) -> None:
        async for frame in self.connection:
            assert isinstance(frame, bytes)
            reader = Reader(frame)
            if reader.uint() != SYNC:
                continue
            kind, payload = reader.uint(), reader.bytes()
            if kind == SYNC_STEP1:
                await self.connection.send(sync_message(SYNC_STEP2, self.doc.get_update(payload)))
            else:
                self.doc.apply_update(payload)
                if kind == SYNC_STEP2:
                    self.synced.set()
                else:
                    self.updates += 1
                    self.arrived.set()


@dataclass(frozen=True)
class _Server:
    """A running server under measurement: where it listens, its token, its process."""

    url: str
    token: str
    pid: int

    @property
    def headers(self) -> dict[str, str]:
        """The token header every request and WebSocket carries."""
        return {"Authorization": f"token {self.token}"}


async def _connect(server: _Server, room: str) -> tuple[_Client, asyncio.Task[None]]:
    url = server.url.replace("http", "ws", 1) + f"api/collaboration/room/{room}"
    connection = await websockets.connect(url, additional_headers=server.headers, max_size=None)
    client = _Client(connection)
    task = asyncio.create_task(client.run())
    await connection.send(sync_message(SYNC_STEP1, client.doc.get_state()))
    await client.synced.wait()
    return client, task


async def _session(server: _Server, path: str) -> str:
    """Open ``path``'s session; returns the room id with the ``sessionId`` query."""
    async with httpx.AsyncClient(headers=server.headers, timeout=120) as http:
        response = await http.put(
            f"{server.url}api/collaboration/session/{path}",
            json={"format": "json", "type": "notebook"},
        )
        response.raise_for_status()
        body = response.json()
        return f"json:notebook:{body['fileId']}?sessionId={body['sessionId']}"


@asynccontextmanager
async def _junction(root: Path, tmp: Path) -> AsyncIterator[_Server]:
    args = ["--ip", "127.0.0.1", "--port", "0", "--root-dir", str(root)]
    args += ["--profile", "contents", "--enable", "collaboration"]
    args += ["--set", f"database_url=sqlite+aiosqlite:///{tmp / 'junction.db'}"]
    with ServerProcess(args, log_path=tmp / "server.log") as server:
        yield _Server(server.url, TEST_TOKEN, server.pid)


@asynccontextmanager
async def _jupyter_server(root: Path, jupyter_path: Path) -> AsyncIterator[_Server]:
    env = next(e for e in comparison_environments() if e.name == "jupyter_server")
    kind = JupyterServerKind(env, collaboration=True)
    token = secrets.token_hex(16)
    server, _ = await asyncio.to_thread(
        RunningServer.launch_ready, kind, token=token, root=root, jupyter_path=jupyter_path
    )
    try:
        yield _Server(server.url, token, server.pid)
    finally:
        await asyncio.to_thread(server.stop)


async def _measure_on(server: _Server, clients: int, updates: int, rooms: int) -> dict[str, Any]:
    process = psutil.Process(server.pid)
    rss_before = process.memory_info().rss
    started = time.perf_counter()
    room = await _session(server, "big0.ipynb")
    writer, writer_task = await _connect(server, room)
    open_seconds = time.perf_counter() - started
    cells = len(writer.doc.get("cells", type=Array))
    if cells != NOTEBOOK_CELLS:
        raise RuntimeError(f"the room synced {cells} cells, not {NOTEBOOK_CELLS}")
    readers = [await _connect(server, room) for _ in range(clients)]
    text_root: Text = writer.doc.get("fanout", type=Text)
    pending: list[bytes] = []
    writer.doc.observe(lambda event: pending.append(event.update))
    latencies: list[float] = []
    for _ in range(updates):
        for reader, _task in readers:
            reader.arrived = asyncio.Event()
        text_root += "k"
        sent = time.perf_counter()
        for update in pending:
            await writer.connection.send(sync_message(SYNC_UPDATE, update))
        pending.clear()
        for reader, _task in readers:
            await reader.arrived.wait()
            latencies.append(time.perf_counter() - sent)
    for other in range(1, rooms):
        extra = await _session(server, f"big{other}.ipynb")
        readers.append(await _connect(server, extra))
    rss_rooms = (process.memory_info().rss - rss_before) / rooms / (1 << 20)
    for client, task in [*readers, (writer, writer_task)]:
        await client.connection.close()
        task.cancel()
    latencies.sort()
    return {
        "open_seconds": open_seconds,
        "fanout": latencies,
        "p50": latencies[len(latencies) // 2],
        "p99": latencies[min(len(latencies) - 1, int(len(latencies) * 0.99))],
        "rss_mb_per_room": rss_rooms,
    }


async def measure(
    target: str = "junction",
    *,
    clients: int = 20,
    updates: int = 50,
    rooms: int = 3,
    jupyter_path: Path | None = None,
) -> dict[str, Any]:
    """Start ``target`` (one of :data:`SERVERS`), run the three measurements, stop it;
    returns the raw numbers."""
    with tempfile.TemporaryDirectory() as name:
        tmp = Path(name)
        root = tmp / "root"
        root.mkdir()
        text = json.dumps(big_notebook())
        for i in range(rooms):
            (root / f"big{i}.ipynb").write_text(text)
        if target == "junction":
            server = _junction(root, tmp)
        else:
            path = jupyter_path or kernelspec_path(REPO / ".venv" / "bin" / "python")
            server = _jupyter_server(root, path)
        async with server as running:
            return await _measure_on(running, clients, updates, rooms)


async def collaboration_suite(ctx: Any) -> None:
    """The collaboration group: Junction's numbers, and jupyter-collaboration's when
    jupyter_server is among the run's servers."""
    running = {server.name for server in ctx.servers}
    for target in (t for t in SERVERS if t == "junction" or t in running):
        numbers = await measure(
            target, clients=ctx.plan.fanout_clients, jupyter_path=ctx.jupyter_path
        )
        ctx.results.add("collab_open", target, numbers["open_seconds"])
        ctx.results.add("collab_fanout", target, *numbers["fanout"])
        ctx.results.add("collab_rss_room", target, numbers["rss_mb_per_room"])


if __name__ == "__main__":  # a quick look: python -m bench.scenarios.collaboration [server]
    for name in sys.argv[1:] or SERVERS:
        result = asyncio.run(measure(name))
        result.pop("fanout")
        print(name, json.dumps(result), flush=True)
