"""``Database``: URLs, SQLite's settings, transactions, and which errors become 503."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from sqlalchemy import insert, select, text
from sqlalchemy.exc import IntegrityError

from junction.app import create_app
from junction.database import Database, masked_url, upgrade
from junction.errors import ConfigError
from junction.testing import make_settings

from .sample import NOTES, TABLES

pytestmark = pytest.mark.anyio


@pytest.fixture
async def database(database_url: str) -> AsyncIterator[Database]:
    """A database with the sample plugin's table."""
    db = Database(database_url)
    await upgrade(db, [("sample", TABLES)])
    yield db
    await db.close()


@pytest.mark.parametrize(
    "url",
    ["postgresql://ana:pw-123@db/j", "sqlite:///x.db", "mysql+aiomysql://ana:pw-123@db/j", "nope"],
)
async def test_unsupported_urls_are_refused_before_anything_starts(url: str) -> None:
    with pytest.raises(ConfigError) as caught:
        create_app(make_settings(database_url=url))
    assert "database_url" in str(caught.value)
    assert "pw-123" not in str(caught.value)


async def test_masked_urls_hide_only_the_password() -> None:
    assert masked_url("postgresql+asyncpg://ana:pw@db:5432/j") == (
        "postgresql+asyncpg://ana:***@db:5432/j"
    )
    assert masked_url("sqlite+aiosqlite:////data/j.db") == "sqlite+aiosqlite:////data/j.db"
    assert "pw" not in repr(Database("postgresql+asyncpg://ana:pw@db/j"))
    assert masked_url("postgresql+asyncpg://ana@db/j?PassWord=pw&sslmode=require") == (
        "postgresql+asyncpg://ana@db/j?PassWord=***&sslmode=require"
    )


async def test_sqlite_gets_its_directory_wal_and_a_busy_timeout(tmp_path: Path) -> None:
    database = Database(f"sqlite+aiosqlite:///{tmp_path}/new/dir/j.db")
    try:
        async with database.session() as session:
            mode = (await session.execute(text("PRAGMA journal_mode"))).scalar()
            timeout = (await session.execute(text("PRAGMA busy_timeout"))).scalar()
            keys = (await session.execute(text("PRAGMA foreign_keys"))).scalar()
    finally:
        await database.close()
    assert (tmp_path / "new" / "dir" / "j.db").is_file()
    assert mode == "wal"
    assert timeout == 10_000
    assert keys == 1


async def insert_then_fail(database: Database) -> None:
    """Insert a row, then fail inside the same transaction."""
    async with database.session() as session:
        await session.execute(insert(NOTES).values(id=2, text="dropped"))
        raise RuntimeError("boom")


async def test_a_session_commits_on_exit_and_rolls_back_on_error(database: Database) -> None:
    async with database.session() as session:
        await session.execute(insert(NOTES).values(id=1, text="kept"))
    with pytest.raises(RuntimeError):
        await insert_then_fail(database)
    async with database.session() as session:
        texts = (await session.execute(select(NOTES.c.text))).scalars().all()
    assert texts == ["kept"]


async def test_errors_in_queries_are_not_taken_for_an_outage(database: Database) -> None:
    async with database.session() as session:
        await session.execute(insert(NOTES).values(id=1, text="one"))
    with pytest.raises(IntegrityError):
        async with database.session() as session:
            await session.execute(insert(NOTES).values(id=1, text="again"))
    with pytest.raises(Exception, match="no_such_table") as caught:
        async with database.session() as session:
            await session.execute(text("SELECT * FROM no_such_table"))
    assert type(caught.value).__module__.startswith("sqlalchemy")
