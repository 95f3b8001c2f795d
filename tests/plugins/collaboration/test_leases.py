"""One owner per room when several servers share one database: the room leases.

Two ``Rooms`` (two servers, each with its own ``sessionId``) on one database, SQLite and
PostgreSQL; then two real ``junction`` processes, where the second refuses the room's
WebSocket with 4503.
"""

from __future__ import annotations

import json
import socket
import subprocess
from collections.abc import AsyncIterator, Callable
from contextlib import AsyncExitStack, asynccontextmanager
from pathlib import Path
from typing import Any

import anyio
import httpx
import pytest
import websockets
from sqlalchemy import Connection, inspect, select, text, update

from junction.database import Database, upgrade, version_table
from junction.plugins.collaboration.document import DocumentRoom
from junction.plugins.collaboration.leases import RoomOwnedElsewhere
from junction.plugins.collaboration.room import Client
from junction.plugins.collaboration.rooms import OWNED_ELSEWHERE, Rooms
from junction.plugins.collaboration.settings import CollaborationSettings
from junction.plugins.collaboration.store import DatabaseStore
from junction.plugins.collaboration.tables import LEASES_TABLE, TABLES
from junction.plugins.contents import LocalContents
from junction.plugins.contents.settings import ContentsSettings
from junction.testing import TEST_TOKEN, ServerProcess

pytestmark = pytest.mark.anyio

DEADLINE = 30.0


class Servers:
    """Two fake servers, ``a`` and ``b``, on one database and one root directory."""

    def __init__(self, database: Database, root: Path, stack: AsyncExitStack) -> None:
        self.database = database
        self.root = root
        self.stack = stack
        self.groups: dict[str, anyio.abc.TaskGroup] = {}

    async def server(self, name: str, *, lease: float = 15.0) -> Rooms:
        """A server's ``Rooms`` with its own task group (cancelled to make it die)."""
        group = await self.stack.enter_async_context(anyio.create_task_group())
        self.groups[name] = group
        settings = CollaborationSettings(room_lease_seconds=lease, document_save_delay=0.05)
        store = DatabaseStore(self.database, checkpoint_every=100)
        contents = LocalContents(self.root, ContentsSettings())
        return Rooms(settings, store, contents, group)

    async def lease(self, room_id: str) -> tuple[str, float] | None:
        """The row of ``room_id``'s lease: (owner, expires_at), or None."""
        async with self.database.session() as session:
            row = (
                await session.execute(
                    select(LEASES_TABLE.c.owner, LEASES_TABLE.c.expires_at).where(
                        LEASES_TABLE.c.room_id == room_id
                    )
                )
            ).first()
        return None if row is None else (row.owner, row.expires_at)


@asynccontextmanager
async def two_servers(database_url: str, tmp_path: Path) -> AsyncIterator[Servers]:
    """A migrated database and a root holding ``a.txt``; every task group cancelled after."""
    database = Database(database_url)
    await upgrade(database, [("collaboration", TABLES)])
    root = tmp_path / "root"
    root.mkdir()
    (root / "a.txt").write_text("hello")
    try:
        async with AsyncExitStack() as stack:
            servers = Servers(database, root, stack)
            try:
                yield servers
            finally:
                for group in servers.groups.values():
                    group.cancel_scope.cancel()
    finally:
        await database.close()


async def wait_until(condition: Callable[[], Any]) -> None:
    """Poll ``condition`` (sync or async) until it is true, failing after the deadline."""
    with anyio.fail_after(DEADLINE):
        while True:
            value = condition()
            if hasattr(value, "__await__"):
                value = await value
            if value:
                return
            await anyio.sleep(0.02)


async def test_the_first_server_owns_the_room_until_it_closes_it(
    database_url: str, tmp_path: Path
) -> None:
    async with two_servers(database_url, tmp_path) as servers:
        a, b = await servers.server("a"), await servers.server("b")
        file_id, _ = await a.index("a.txt")
        room_id = f"text:file:{file_id}"

        first = await a.get(room_id)
        assert (await servers.lease(room_id) or ("", 0))[0] == a.session_id
        assert await a.get(room_id) is first  # opening it again costs no new lease
        with pytest.raises(RoomOwnedElsewhere) as refused:
            await b.get(room_id)
        assert refused.value.owner == a.session_id
        assert refused.value.body()["reason"] == "owned_elsewhere"
        assert room_id not in b.rooms

        await a.aclose()  # saves, closes and releases the lease
        assert await servers.lease(room_id) is None
        second = await b.get(room_id)
        assert b.rooms[room_id] is second
        assert (await servers.lease(room_id) or ("", 0))[0] == b.session_id
        with pytest.raises(RoomOwnedElsewhere) as refused:
            await a.get(room_id)
        assert refused.value.owner == b.session_id


def dead_pid() -> int:
    """The process id of a process that has already exited."""
    child = subprocess.Popen(["true"])
    child.wait()
    return child.pid


@pytest.mark.parametrize(("same_host", "taken_at_once"), [(True, True), (False, False)])
async def test_a_lease_of_a_dead_process_on_this_host_is_taken_at_once(
    database_url: str, tmp_path: Path, same_host: bool, taken_at_once: bool
) -> None:
    async with two_servers(database_url, tmp_path) as servers:
        a, b = await servers.server("a"), await servers.server("b")
        file_id, _ = await a.index("a.txt")
        room_id = f"text:file:{file_id}"
        await a.get(room_id)
        # Make a's lease look like a crashed server's: a pid that is gone, here or elsewhere.
        host = socket.gethostname() if same_host else "another-host"
        async with servers.database.session() as session:
            await session.execute(
                update(LEASES_TABLE)
                .where(LEASES_TABLE.c.room_id == room_id)
                .values(host=host, pid=dead_pid())
            )
        if taken_at_once:
            await b.get(room_id)
            assert (await servers.lease(room_id) or ("", 0))[0] == b.session_id
        else:
            with pytest.raises(RoomOwnedElsewhere):
                await b.get(room_id)


async def test_a_dead_owner_s_lease_expires_and_the_next_open_takes_it(
    database_url: str, tmp_path: Path
) -> None:
    async with two_servers(database_url, tmp_path) as servers:
        a, b = await servers.server("a", lease=0.6), await servers.server("b", lease=0.6)
        file_id, _ = await a.index("a.txt")
        room_id = f"text:file:{file_id}"
        await a.get(room_id)
        taken = await servers.lease(room_id)
        assert taken is not None

        # While a lives, it renews the lease, and b is refused.
        await wait_until(lambda: _later(servers.lease(room_id), taken[1]))
        with pytest.raises(RoomOwnedElsewhere):
            await b.get(room_id)

        servers.groups["a"].cancel_scope.cancel()  # a dies: no renewal, no release

        async def b_opens() -> bool:
            try:
                await b.get(room_id)
            except RoomOwnedElsewhere:
                return False
            return True

        await wait_until(b_opens)
        assert (await servers.lease(room_id) or ("", 0))[0] == b.session_id


async def _later(row: Any, than: float) -> bool:
    found = await row
    return found is not None and found[1] > than


async def test_a_server_that_lost_its_lease_closes_the_room_unsaved(
    database_url: str, tmp_path: Path
) -> None:
    async with two_servers(database_url, tmp_path) as servers:
        a, b = await servers.server("a", lease=0.6), await servers.server("b", lease=0.6)
        file_id, _ = await a.index("a.txt")
        room_id = f"text:file:{file_id}"
        room = await a.get(room_id)
        assert isinstance(room, DocumentRoom)
        client = Client()
        room.join(client)

        # a stalled past its lease (made to look so), and b took the room over.
        async with servers.database.session() as session:
            await session.execute(
                update(LEASES_TABLE).where(LEASES_TABLE.c.room_id == room_id).values(expires_at=0)
            )
        await b.get(room_id)

        await wait_until(lambda: room_id not in a.rooms)
        assert room.path is None  # it never saves the file again
        assert client.closing is not None
        code, reason = client.closing
        assert code == OWNED_ELSEWHERE
        assert json.loads(reason) == {"reason": "owned_elsewhere", "owner": b.session_id}
        client.inbox.close()
        assert (await servers.lease(room_id) or ("", 0))[0] == b.session_id


async def test_a_second_junction_process_refuses_the_room_with_4503(
    database_url: str, tmp_path: Path
) -> None:
    root = tmp_path / "root"
    root.mkdir()
    (root / "a.txt").write_text("hello")
    args = ["--port", "0", "--ip", "127.0.0.1", "--profile", "none", "--root-dir", str(root)]
    args += ["--enable", "contents", "--enable", "collaboration"]
    args += ["--set", f"database_url={database_url}"]
    headers = {"Authorization": f"token {TEST_TOKEN}"}
    first = ServerProcess(args, log_path=tmp_path / "first.log").start()
    try:
        second = ServerProcess(args, log_path=tmp_path / "second.log").start()
        try:
            async with httpx.AsyncClient(headers=headers) as http:
                opened = await http.put(
                    f"{first.url}api/collaboration/session/a.txt",
                    json={"format": "text", "type": "file"},
                )
                assert opened.status_code == 201, opened.text
                session = opened.json()
            room = f"text:file:{session['fileId']}"
            owner_url = f"{first.url.replace('http', 'ws', 1)}api/collaboration/room/{room}"
            async with websockets.connect(
                f"{owner_url}?sessionId={session['sessionId']}", additional_headers=headers
            ) as owner:
                with anyio.fail_after(DEADLINE):
                    assert isinstance(await owner.recv(), bytes)  # the room syncs
                other_url = owner_url.replace(first.url[7:], second.url[7:])
                async with websockets.connect(other_url, additional_headers=headers) as other:
                    with pytest.raises(websockets.ConnectionClosed), anyio.fail_after(DEADLINE):
                        await other.recv()
                assert other.close_code == OWNED_ELSEWHERE
                assert json.loads(other.close_reason or "") == {
                    "reason": "owned_elsewhere",
                    "owner": session["sessionId"],
                }
        finally:
            second.stop()
    finally:
        first.stop()


def _schema(connection: Connection) -> dict[str, object]:
    inspector = inspect(connection)
    return {
        table: (
            [(c["name"], str(c["type"]), c["nullable"]) for c in inspector.get_columns(table)],
            inspector.get_pk_constraint(table)["constrained_columns"],
            sorted((i["name"], tuple(i["column_names"])) for i in inspector.get_indexes(table)),
        )
        for table in sorted(inspector.get_table_names())
        if table.startswith("collaboration_")
    }


async def test_the_revisions_make_the_tables_the_metadata_declares(
    database_url: str, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    if database_url.startswith("sqlite"):
        other_url = f"sqlite+aiosqlite:///{tmp_path / 'other.db'}"
    else:
        cluster = request.getfixturevalue("postgres_cluster")
        other_url = cluster.url(cluster.create_database())
    shortcut, replayed = Database(database_url), Database(other_url)
    try:
        async with replayed.session() as session:  # known to Alembic: the revisions run
            await session.execute(
                text(f"CREATE TABLE {version_table('collaboration')} (version_num VARCHAR(32))")
            )
        assert await upgrade(shortcut, [("collaboration", TABLES)]) == ["collaboration"]
        assert await upgrade(replayed, [("collaboration", TABLES)]) == ["collaboration"]
        async with shortcut.engine.connect() as conn:
            made = await conn.run_sync(_schema)
        async with replayed.engine.connect() as conn:
            migrated = await conn.run_sync(_schema)
    finally:
        await shortcut.close()
        await replayed.close()
    assert "collaboration_leases" in made
    assert made == migrated
