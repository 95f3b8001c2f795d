"""Collaboration: opening a big notebook into a room, update fan-out, memory per room.

Junction alone: the comparison server would need ``jupyter-collaboration``, which pulls
``jupyter_server`` and ``jupyterlab`` pins into the environment and is not installed for the
benchmark. The scenario starts its own Junction (contents + collaboration, SQLite store in a
temporary directory) so the other groups' servers keep their plugin set.

- ``collab_open``: seconds from the session PUT to the first client's SyncStep2 for a
  5 MB, 500-cell notebook (load from disk, build the document, store it).
- ``collab_fanout``: seconds from one client's keystroke update to its arrival at each of
  ``clients`` (20) other clients, per receiver.
- ``collab_rss_room``: server RSS growth per open room of that notebook, MB.
"""

from __future__ import annotations

import asyncio
import json
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import psutil
import websockets
from pycrdt import Doc, Text

from junction.plugins.collaboration.protocol import (
    SYNC,
    SYNC_STEP1,
    SYNC_STEP2,
    SYNC_UPDATE,
    Reader,
    sync_message,
)
from junction.testing import TEST_TOKEN, ServerProcess

__all__ = ["big_notebook", "collaboration_suite", "measure"]

AUTH = {"Authorization": f"token {TEST_TOKEN}"}


def big_notebook(cells: int = 500, megabytes: float = 5.0) -> dict[str, Any]:
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


async def _connect(base: str, room: str) -> tuple[_Client, asyncio.Task[None]]:
    url = base.replace("http", "ws", 1) + f"api/collaboration/room/{room}"
    connection = await websockets.connect(url, additional_headers=AUTH, max_size=None)
    client = _Client(connection)
    task = asyncio.create_task(client.run())
    await connection.send(sync_message(SYNC_STEP1, client.doc.get_state()))
    await client.synced.wait()
    return client, task


async def _session(base: str, path: str) -> str:
    import httpx

    async with httpx.AsyncClient(headers=AUTH, timeout=120) as http:
        response = await http.put(
            f"{base}api/collaboration/session/{path}", json={"format": "json", "type": "notebook"}
        )
        response.raise_for_status()
        return f"json:notebook:{response.json()['fileId']}"


async def measure(clients: int = 20, updates: int = 50, rooms: int = 3) -> dict[str, Any]:
    """Start a server, run the three measurements, stop it; returns the raw numbers."""
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp) / "root"
        root.mkdir()
        text = json.dumps(big_notebook())
        for i in range(rooms):
            (root / f"big{i}.ipynb").write_text(text)
        args = ["--ip", "127.0.0.1", "--port", "0", "--root-dir", str(root)]
        args += ["--profile", "contents", "--enable", "collaboration"]
        args += ["--set", f"database_url=sqlite+aiosqlite:///{Path(tmp) / 'junction.db'}"]
        with ServerProcess(args, log_path=Path(tmp) / "server.log") as server:
            process = psutil.Process(server.pid)
            base = server.url
            rss_before = process.memory_info().rss
            started = time.perf_counter()
            room = await _session(base, "big0.ipynb")
            writer, writer_task = await _connect(base, room)
            open_seconds = time.perf_counter() - started
            readers = [await _connect(base, room) for _ in range(clients)]
            text_root: Text = writer.doc.get("fanout", type=Text)
            pending: list[bytes] = []
            writer.doc.observe(lambda event: pending.append(event.update))
            latencies: list[float] = []
            for n in range(updates):
                for reader, _ in readers:
                    reader.arrived = asyncio.Event()
                text_root += "k"
                sent = time.perf_counter()
                for update in pending:
                    await writer.connection.send(sync_message(SYNC_UPDATE, update))
                pending.clear()
                for reader, _ in readers:
                    await reader.arrived.wait()
                    latencies.append(time.perf_counter() - sent)
                del n
            for other in range(1, rooms):
                extra = await _session(base, f"big{other}.ipynb")
                readers.append(await _connect(base, extra))
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


async def collaboration_suite(ctx: Any) -> None:
    """The collaboration group: Junction's numbers under the name ``junction``."""
    numbers = await measure(clients=ctx.plan.fanout_clients)
    ctx.results.add("collab_open", "junction", numbers["open_seconds"])
    ctx.results.add("collab_fanout", "junction", *numbers["fanout"])
    ctx.results.add("collab_rss_room", "junction", numbers["rss_mb_per_room"])


if __name__ == "__main__":  # a quick look: python -m bench.scenarios.collaboration
    result = asyncio.run(measure())
    result.pop("fanout")
    json.dump(result, sys.stdout, indent=1)
    print()
