"""Awareness over the wire, multi-user: the global awareness room is per user, a connection
owns the awareness ids it announced, and an oversized state closes only its sender (1009).

A real server (contents, users, collaboration) in a subprocess, clients over websockets.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Iterator, Mapping
from contextlib import asynccontextmanager
from pathlib import Path

import anyio
import httpx
import pytest
import websockets
from websockets.asyncio.client import ClientConnection

from junction.plugins.collaboration.protocol import (
    AWARENESS,
    AwarenessEntry,
    Reader,
    awareness_message,
    parse_awareness,
)
from junction.plugins.collaboration.room import MAX_AWARENESS_STATE
from junction.testing import TEST_TOKEN, ServerProcess

pytestmark = [pytest.mark.e2e, pytest.mark.anyio]

WAIT = 20.0
GLOBAL = "JupyterLab:globalAwareness"


class Peer:
    """One WebSocket in a room, recording the awareness states it was sent."""

    def __init__(self, connection: ClientConnection) -> None:
        self.connection = connection
        self.states: dict[int, str] = {}
        self.seen: list[int] = []
        self.close_code: int | None = None
        self.changed = anyio.Event()

    async def run(self) -> None:
        """Read frames until the socket closes."""
        try:
            async for frame in self.connection:
                assert isinstance(frame, bytes)
                reader = Reader(frame)
                if reader.uint() == AWARENESS:
                    for entry in parse_awareness(reader.bytes()):
                        self.states[entry.client_id] = entry.state
                        self.seen.append(entry.client_id)
                self.changed.set()
                self.changed = anyio.Event()
        except websockets.ConnectionClosed:
            pass
        finally:
            self.close_code = self.connection.close_code
            self.changed.set()

    async def announce(self, client_id: int, clock: int, state: Mapping[str, object]) -> None:
        """Send one awareness entry."""
        entry = AwarenessEntry(client_id, clock, json.dumps(state))
        await self.connection.send(awareness_message([entry]))

    async def wait_for(self, condition: object) -> None:
        """Wait until ``condition()`` holds."""
        assert callable(condition)
        with anyio.fail_after(WAIT):
            while not condition():
                await self.changed.wait()


@pytest.fixture
def server(tmp_path: Path) -> Iterator[str]:
    """A multi-user server with collaboration on a fresh root and database."""
    root = tmp_path / "root"
    root.mkdir()
    args = ["--ip", "127.0.0.1", "--port", "0", "--root-dir", str(root)]
    args += ["--profile", "contents", "--enable", "users", "--enable", "collaboration"]
    args += ["--set", f"database_url=sqlite+aiosqlite:///{tmp_path / 'junction.db'}"]
    with ServerProcess(args, log_path=tmp_path / "server.log") as process:
        yield process.url


async def user_token(base: str, name: str) -> str:
    """Create user ``name`` (as the server's admin token) and return an API token of theirs."""
    async with httpx.AsyncClient(headers={"Authorization": f"token {TEST_TOKEN}"}) as admin:
        created = await admin.post(f"{base}api/users", json={"name": name})
        assert created.status_code == 201, created.text
        issued = await admin.post(f"{base}api/users/{name}/tokens")
        assert issued.status_code in (200, 201), issued.text
        token: str = issued.json()["token"]
        return token


@asynccontextmanager
async def peer(base: str, token: str) -> AsyncIterator[Peer]:
    """A connection to the global awareness room as the holder of ``token``."""
    url = base.replace("http", "ws", 1) + f"api/collaboration/room/{GLOBAL}"
    headers = {"Authorization": f"token {token}"}
    async with websockets.connect(url, additional_headers=headers, max_size=None) as connection:
        client = Peer(connection)
        async with anyio.create_task_group() as group:
            group.start_soon(client.run)
            yield client
            group.cancel_scope.cancel()


async def test_global_awareness_is_per_user_and_ids_are_owned(server: str) -> None:
    ana, bob = await user_token(server, "ana"), await user_token(server, "bob")
    secret = {"user": {"name": "ana"}, "current": "json:notebook:x", "path": "home/ana/s.ipynb"}
    async with peer(server, ana) as ana1, peer(server, ana) as ana2, peer(server, bob) as bob1:
        await ana1.announce(111, 1, secret)
        await ana2.wait_for(lambda: 111 in ana2.states)
        await bob1.announce(222, 1, {"user": {"name": "bob"}})
        await bob1.wait_for(lambda: 222 in bob1.states)
        assert 111 not in bob1.seen, "another user's open documents reached bob"
        await ana1.wait_for(lambda: 111 in ana1.states)
        assert 222 not in ana1.seen

        # ana's second tab may not rewrite or clear the first one's id
        await ana2.announce(111, 2, {"user": {"name": "spoofed"}})
        await ana2.announce(333, 1, {"user": {"name": "ana, tab 2"}})
        await ana1.wait_for(lambda: 333 in ana1.states)
        assert json.loads(ana1.states[111]) == secret

        # an oversized state closes its sender only
        await ana2.announce(444, 1, {"user": {"name": "x" * MAX_AWARENESS_STATE}})
        await ana2.wait_for(lambda: ana2.close_code is not None)
        assert ana2.close_code == 1009
        await ana1.wait_for(lambda: ana1.states.get(333) == "null")
        assert 444 not in ana1.seen
        await ana1.announce(111, 3, {"user": {"name": "ana, still here"}})
        await ana1.wait_for(lambda: "still here" in ana1.states[111])
