"""Per-plugin migrations on SQLite and PostgreSQL: applied once, each plugin in its own
version table, cheap when there is nothing to do, and one migrator at a time."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path

import anyio
import pytest
from sqlalchemy import Column, Connection, Integer, MetaData, Table, insert, inspect, select, text

from junction.database import Database, PluginTables, pending, upgrade, version_table
from junction.database.migrations import heads
from junction.plugins.lab.tables import TABLES as LAB_TABLES
from junction.plugins.sessions.tables import TABLES as SESSIONS_TABLES

from .sample import MIGRATIONS, NOTES, TABLES

pytestmark = pytest.mark.anyio

SAMPLE = Path(__file__).parent / "sample.py"


@pytest.fixture
async def database(database_url: str) -> AsyncIterator[Database]:
    """The database under test, closed after it."""
    db = Database(database_url)
    yield db
    await db.close()


async def known_to_alembic(url: str, plugin: str) -> None:
    """Give ``plugin`` an empty version table, as if it had been migrated to no revision:
    its revisions then run through Alembic instead of the new-database shortcut."""
    database = Database(url)
    try:
        async with database.session() as session:
            await session.execute(
                text(f"CREATE TABLE {version_table(plugin)} (version_num VARCHAR(32) NOT NULL)")
            )
    finally:
        await database.close()


def schema(connection: Connection) -> dict[str, object]:
    """Every table's columns (name, type, nullable), primary key and indexes."""
    inspector = inspect(connection)
    found: dict[str, object] = {}
    for table in sorted(inspector.get_table_names()):
        if table.startswith("alembic_version_"):
            continue
        columns = [(c["name"], str(c["type"]), c["nullable"]) for c in inspector.get_columns(table)]
        indexes = sorted(
            (i["name"], tuple(i["column_names"])) for i in inspector.get_indexes(table)
        )
        key = inspector.get_pk_constraint(table)["constrained_columns"]
        found[table] = (columns, key, indexes)
    return found


async def rows(database: Database, statement: str) -> list[tuple[object, ...]]:
    """Rows of one SQL statement."""
    async with database.session() as session:
        return [tuple(row) for row in (await session.execute(text(statement))).all()]


async def test_upgrade_creates_the_tables_and_records_the_head(database: Database) -> None:
    migrated = await upgrade(database, [("sample", TABLES)])
    async with database.session() as session:
        await session.execute(insert(NOTES).values(text="hello"))
    async with database.session() as session:
        notes = (await session.execute(select(NOTES.c.text))).scalars().all()
    assert migrated == ["sample"]
    assert notes == ["hello"]
    assert await rows(database, "SELECT version_num FROM alembic_version_sample") == [("t0001",)]


async def test_a_second_upgrade_has_nothing_to_do(database: Database) -> None:
    await upgrade(database, [("sample", TABLES)])
    assert await pending(database, [("sample", TABLES)]) == []
    assert await upgrade(database, [("sample", TABLES)]) == []


async def test_each_plugin_has_its_own_version_table(database: Database) -> None:
    others = MetaData()
    Table("other_things", others, Column("id", Integer, primary_key=True))
    folder = MIGRATIONS.parent / "other_migrations"
    await upgrade(database, [("sample", TABLES)])
    migrated = await upgrade(
        database, [("sample", TABLES), ("other", PluginTables(others, folder))]
    )
    assert migrated == ["other"]
    assert await rows(database, "SELECT version_num FROM alembic_version_other") == [("o0001",)]
    assert await rows(database, "SELECT version_num FROM alembic_version_sample") == [("t0001",)]
    assert version_table("fake-kernels") == "alembic_version_fake_kernels"


async def test_a_new_revision_is_applied_on_the_next_start(
    database: Database, tmp_path: Path
) -> None:
    folder = tmp_path / "migrations"
    shutil.copytree(MIGRATIONS, folder)
    tables = PluginTables(TABLES.metadata, folder)
    await upgrade(database, [("sample", tables)])
    (folder / "t0002_tags.py").write_text(
        '"""Tags."""\n'
        "import sqlalchemy as sa\nfrom alembic import op\n\n"
        'revision = "t0002"\ndown_revision = "t0001"\n\n\n'
        "def upgrade() -> None:\n"
        '    op.add_column("sample_notes", sa.Column("tag", sa.Text, nullable=True))\n'
    )
    assert heads(folder) == frozenset({"t0002"})
    behind = await pending(database, [("sample", tables)])
    assert [state.plugin for state in behind] == ["sample"]
    assert await upgrade(database, [("sample", tables)]) == ["sample"]
    await rows(database, "SELECT tag FROM sample_notes")  # the column exists
    assert await rows(database, "SELECT version_num FROM alembic_version_sample") == [("t0002",)]


async def test_a_failing_revision_leaves_nothing_behind(database: Database, tmp_path: Path) -> None:
    folder = tmp_path / "migrations"
    folder.mkdir()
    (folder / "b0001_broken.py").write_text(
        "import sqlalchemy as sa\nfrom alembic import op\n\n"
        'revision = "b0001"\ndown_revision = None\n\n\n'
        "def upgrade() -> None:\n"
        '    op.create_table("broken_half", sa.Column("id", sa.Integer, primary_key=True))\n'
        '    op.execute("SELECT * FROM no_such_table")\n'
    )
    with pytest.raises(Exception, match="no_such_table"):
        await upgrade(database, [("broken", PluginTables(MetaData(), folder))])
    query = (
        "SELECT name FROM sqlite_master WHERE name LIKE '%broken%'"
        if database.dialect == "sqlite"
        else "SELECT table_name FROM information_schema.tables WHERE table_name LIKE '%broken%'"
    )
    assert await rows(database, query) == []


@pytest.mark.parametrize("plugin", ["lab", "sessions"])
async def test_a_new_database_gets_the_schema_the_revisions_make(
    database_url: str,
    tmp_path_factory: pytest.TempPathFactory,
    request: pytest.FixtureRequest,
    plugin: str,
) -> None:
    """The new-database shortcut (tables from the metadata) and Alembic agree, table for
    table, so a plugin's metadata and its revisions cannot drift apart unnoticed."""
    tables = {"lab": LAB_TABLES, "sessions": SESSIONS_TABLES}[plugin]
    if database_url.startswith("sqlite"):
        other_url = f"sqlite+aiosqlite:///{tmp_path_factory.mktemp('other')}/other.db"
    else:
        cluster = request.getfixturevalue("postgres_cluster")
        other_url = cluster.url(cluster.create_database())
    await known_to_alembic(other_url, plugin)
    shortcut, replayed = Database(database_url), Database(other_url)
    versions = f"SELECT * FROM {version_table(plugin)}"  # noqa: S608 - a fixed name
    try:
        assert await upgrade(shortcut, [(plugin, tables)]) == [plugin]
        assert await upgrade(replayed, [(plugin, tables)]) == [plugin]
        async with shortcut.engine.connect() as conn:
            made = await conn.run_sync(schema)
            stamped = (await conn.execute(text(versions))).all()
        async with replayed.engine.connect() as conn:
            migrated = await conn.run_sync(schema)
            recorded = (await conn.execute(text(versions))).all()
    finally:
        await shortcut.close()
        await replayed.close()
    assert made == migrated
    assert made  # the plugin has tables
    assert stamped == recorded


def test_revision_heads_are_read_without_alembic(tmp_path: Path) -> None:
    assert heads(MIGRATIONS) == frozenset({"t0001"})
    (tmp_path / "x.py").write_text("revision = compute()\ndown_revision = None\n")
    assert heads(tmp_path) is None  # not a literal: Alembic decides


def _migrate_in_child(url: str, env: dict[str, str]) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, str(SAMPLE), url, str(MIGRATIONS)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, **env},
    )


def _wait_for(condition: Callable[[], bool], what: str, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.01)


def _result(child: subprocess.Popen[str]) -> tuple[dict[str, object], str]:
    out, err = child.communicate(timeout=60)
    assert child.returncode == 0, err
    return json.loads(out.strip().splitlines()[-1]), err


@pytest.fixture
def children() -> Iterator[list[subprocess.Popen[str]]]:
    """Child processes, killed if a test leaves them running."""
    started: list[subprocess.Popen[str]] = []
    yield started
    for child in started:
        if child.poll() is None:
            child.kill()
            child.wait()


def test_two_servers_migrating_at_once_take_turns(
    database_url: str, tmp_path: Path, children: list[subprocess.Popen[str]]
) -> None:
    anyio.run(known_to_alembic, database_url, "sample")  # so the gated revision runs
    gate = str(tmp_path / "gate")
    first = _migrate_in_child(database_url, {"JUNCTION_TEST_MIGRATION_GATE": gate})
    children.append(first)
    _wait_for(lambda: Path(gate + ".entered").exists(), "the first migration to start")
    second = _migrate_in_child(database_url, {"JUNCTION_TEST_MIGRATION_GATE": gate + "-2"})
    children.append(second)
    # The second finds work to do, then waits for the first one's lock.
    stderr = second.stderr
    assert stderr is not None
    _wait_for(lambda: "waiting for another server" in stderr.readline(), "the second to wait")
    assert second.poll() is None
    assert not Path(gate + "-2.entered").exists()
    Path(gate + ".release").touch()
    first_result, _ = _result(first)
    second_result, _ = _result(second)
    assert first_result == {"migrated": ["sample"], "alembic": True}
    assert second_result["migrated"] == []  # the work was done when its turn came
    assert not Path(gate + "-2.entered").exists()  # its migration never ran


def test_nothing_to_migrate_does_not_import_alembic(database_url: str) -> None:
    first, _ = _result(_migrate_in_child(database_url, {}))
    again, _ = _result(_migrate_in_child(database_url, {}))
    # A new database gets the tables from the metadata, stamped; nothing runs through Alembic.
    assert first == {"migrated": ["sample"], "alembic": False}
    assert again == {"migrated": [], "alembic": False}


async def test_upgrade_runs_on_anyio(database_url: str) -> None:
    """The migration lock waits without blocking the event loop."""
    database = Database(database_url)
    try:
        with anyio.fail_after(30):
            assert await upgrade(database, [("sample", TABLES)]) == ["sample"]
    finally:
        await database.close()


def test_two_db_upgrade_commands_at_once_migrate_once(database_url: str) -> None:
    env = {**os.environ, "JUNCTION_DATABASE_URL": database_url}
    command = [sys.executable, "-m", "junction.cli", "db", "upgrade", "--profile", "full"]
    both = [
        subprocess.Popen(
            command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env
        )
        for _ in range(2)
    ]
    outputs = []
    for child in both:
        out, err = child.communicate(timeout=120)
        assert child.returncode == 0, err
        outputs.append(out.strip().rsplit(": ", 1)[1])
    # Whichever came second found the work done, whether it waited for the lock or not.
    done = [output for output in outputs if output != "nothing to migrate"]
    assert len(done) == 1
    assert {"lab", "sessions"} <= set(done[0].split(", "))
