"""Rooms in process: sync, read-only clients, and the database store of ids and updates."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from pycrdt import Doc, Text

from junction.database import Database, upgrade
from junction.plugins.collaboration.protocol import (
    SYNC_STEP2,
    SYNC_UPDATE,
    Reader,
    sync_message,
)
from junction.plugins.collaboration.room import Client, ClientClosed, Room
from junction.plugins.collaboration.store import DatabaseStore
from junction.plugins.collaboration.tables import TABLES

pytestmark = pytest.mark.anyio


def an_update(text: str) -> bytes:
    """A Yjs update that sets the root text ``t`` of a fresh document to ``text``."""
    doc: Doc[Any] = Doc()
    doc["t"] = Text(text)
    return doc.get_update()


def frames(client: Client) -> list[bytes]:
    """Everything queued for ``client`` so far."""
    queued = []
    while True:
        try:
            queued.append(client.inbox.receive_nowait())
        except Exception:
            return queued


async def test_updates_go_to_every_client_the_sender_included() -> None:
    room = Room("r")
    room.observe()
    alice, bob = Client(), Client()
    room.join(alice)
    room.join(bob)
    frames(alice), frames(bob)
    await room.handle(alice, sync_message(SYNC_UPDATE, an_update("hi")))
    for client in (alice, bob):
        (frame,) = frames(client)
        reader = Reader(frame)
        assert (reader.uint(), reader.uint()) == (0, SYNC_UPDATE)
    assert str(room.doc.get("t", type=Text)) == "hi"


async def test_a_read_only_client_cannot_change_the_document() -> None:
    room = Room("r")
    room.observe()
    writer, reader_client = Client(), Client(read_only=True)
    room.join(writer)
    room.join(reader_client)
    frames(writer)
    await room.handle(reader_client, sync_message(SYNC_STEP2, an_update("offered")))
    assert list(room.doc.keys()) == []
    assert frames(writer) == []
    with pytest.raises(ClientClosed) as closed:
        await room.handle(reader_client, sync_message(SYNC_UPDATE, an_update("typed")))
    assert closed.value.code == 1008
    assert list(room.doc.keys()) == []
    assert frames(writer) == []


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[DatabaseStore]:
    """A store over a migrated SQLite database."""
    database = Database(f"sqlite+aiosqlite:///{tmp_path / 'junction.db'}")
    await upgrade(database, [("collaboration", TABLES)])
    try:
        yield DatabaseStore(database, checkpoint_every=3)
    finally:
        await database.close()


async def test_file_ids_follow_renames_and_go_with_deletes(store: DatabaseStore) -> None:
    first, created = await store.index("dir/a.ipynb")
    assert created
    again, created = await store.index("dir/a.ipynb")
    assert (again.id, created) == (first.id, False)
    other, _ = await store.index("dir_x/b.ipynb")  # '_' is no LIKE wildcard here
    assert await store.moved("dir", "new") == [(first.id, "new/a.ipynb")]
    record = await store.by_id(first.id)
    assert record is not None
    assert record.path == "new/a.ipynb"
    assert (await store.by_id(other.id)) is not None
    assert await store.deleted("new") == [first.id]
    assert await store.by_id(first.id) is None


async def test_updates_are_merged_into_a_checkpoint(store: DatabaseStore) -> None:
    doc: Doc[Any] = Doc()
    updates: list[bytes] = []
    doc.observe(lambda event: updates.append(event.update))
    doc["t"] = text = Text()
    for word in ("a", "b", "c", "d"):
        text += word
    await store.append("room", updates)
    assert await store.count("room") == 1
    rebuilt: Doc[Any] = Doc()
    for update in await store.load("room"):
        rebuilt.apply_update(update)
    assert str(rebuilt.get("t", type=Text)) == "abcd"
