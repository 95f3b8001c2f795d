"""``TableSessionStore``: sessions in ``sessions_sessions`` on SQLite and PostgreSQL, the same
contract as the memory store; sessions whose kernel did not survive a restart are dropped."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import text

from junction.database import Database, upgrade
from junction.plugins.sessions.manager import StoredSessions
from junction.plugins.sessions.service import SessionRecord, SessionStore
from junction.plugins.sessions.tables import TABLES
from junction.plugins.sessions.tablestore import TableSessionStore
from junction.services import DATABASE
from junction.testing import app_client

from .fakes import FakeKernels, fake_kernels_plugin

pytestmark = pytest.mark.anyio


@pytest.fixture
async def database(database_url: str) -> AsyncIterator[Database]:
    """A migrated database with the sessions table."""
    db = Database(database_url)
    await upgrade(db, [("sessions", TABLES)])
    yield db
    await db.close()


@pytest.fixture
def store(database: Database) -> TableSessionStore:
    return TableSessionStore(database)


def record(number: int, *, path: str | None = None, kernel: str = "k1") -> SessionRecord:
    return SessionRecord(
        id=f"s{number}",
        path=path or f"n{number}.ipynb",
        name=None,
        type="notebook",
        kernel_id=kernel,
    )


async def test_table_store_implements_the_store_protocol(store: TableSessionStore) -> None:
    implementation: SessionStore = store
    assert implementation is store


async def test_records_come_back_as_kept_oldest_first(store: TableSessionStore) -> None:
    for number in (3, 1, 2):
        await store.add(record(number))
    named = SessionRecord(
        id="s4", path="a/b c.ipynb", name="b c.ipynb", type="file", kernel_id="k2"
    )
    await store.add(named)
    assert [r.id for r in await store.list()] == ["s3", "s1", "s2", "s4"]
    assert await store.get("s4") == named
    assert await store.get("nope") is None
    assert await store.find(path="a/b c.ipynb") == named
    assert await store.find(path="missing") is None
    assert [r.id for r in await store.with_kernel("k1")] == ["s3", "s1", "s2"]


async def test_replace_and_remove_ignore_missing_records(store: TableSessionStore) -> None:
    await store.add(record(1))
    await store.replace(SessionRecord("s1", "moved.ipynb", "moved.ipynb", "notebook", "k9"))
    await store.replace(record(2))  # not kept: ignored
    await store.remove("s2")  # not kept: ignored
    assert await store.list() == [
        SessionRecord("s1", "moved.ipynb", "moved.ipynb", "notebook", "k9")
    ]
    await store.remove("s1")
    assert await store.list() == []


async def test_records_outlive_the_store_object(database: Database) -> None:
    await TableSessionStore(database).add(record(1))
    await database.close()
    assert [r.id for r in await TableSessionStore(database).list()] == ["s1"]


async def test_service_over_the_table_drops_sessions_of_gone_kernels(
    store: TableSessionStore, database: Database, tmp_path: Path
) -> None:
    kernels = FakeKernels()
    sessions = StoredSessions(store, kernels, tmp_path)
    created, _ = await sessions.create(path="a.ipynb", type="notebook")
    kept, _ = await sessions.create(path="b.ipynb", type="notebook")
    await kernels.shutdown(created.kernel.id)
    listed = await sessions.list()
    async with database.session() as session:
        ids = (await session.execute(text("SELECT id FROM sessions_sessions"))).scalars().all()
    assert [s.id for s in listed] == [kept.id]
    assert ids == [kept.id]


async def test_sessions_survive_a_restart_only_with_their_kernel(
    database_url: str, tmp_path: Path
) -> None:
    kernels = FakeKernels()
    settings: dict[str, Any] = {
        "database_url": database_url,
        "root_dir": tmp_path,
        "enable": ["sessions"],
    }
    async with app_client(plugins=[fake_kernels_plugin(kernels)], **settings) as client:
        created = (
            await client.post("/api/sessions", json={"path": "a.ipynb", "type": "notebook"})
        ).json()
    # The same kernels (a kernel that outlived the server): the session is still there.
    async with app_client(plugins=[fake_kernels_plugin(kernels)], **settings) as client:
        again = (await client.get("/api/sessions")).json()
    # Kernels that did not survive (a fresh kernels service): the session is dropped.
    async with app_client(plugins=[fake_kernels_plugin(FakeKernels())], **settings) as client:
        after = (await client.get("/api/sessions")).json()
        missing = await client.get(f"/api/sessions/{created['id']}")
    assert [s["id"] for s in again] == [created["id"]]
    assert after == []
    assert missing.status_code == 404
    async with app_client(plugins=[fake_kernels_plugin(FakeKernels())], **settings) as client:
        database: Database = client.app.state.services.get(DATABASE)
        async with database.session() as session:
            rows = (await session.execute(text("SELECT id FROM sessions_sessions"))).all()
    assert rows == []
