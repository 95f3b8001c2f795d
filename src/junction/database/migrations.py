"""Bringing every plugin's tables up to date, one migrator at a time.

Startup must stay cheap when there is nothing to do, which is almost always: the newest
revision of each plugin is read from its revision files with a regular expression, and the
applied one with one query per plugin. Alembic is imported only when a plugin is behind.

Two servers starting against one database must not both migrate it. The one that finds work
takes a lock first, and waits for it (logging that it does) if another holds it:

- PostgreSQL: a transaction-level advisory lock, released when the migration commits;
- SQLite: an exclusive ``flock`` on ``<database file>.migrate.lock`` beside the database.

Under the lock the applied revision is read again, so the second server finds the work done
and does nothing. Each plugin's revisions run in one transaction (PostgreSQL and SQLite both
have transactional DDL), so a failed migration leaves no half-made table. A plugin none of
whose tables exist yet (a new database) gets them from its metadata, stamped with the newest
revision, without importing Alembic.
"""

from __future__ import annotations

import fcntl
import logging
import os
import re
from collections.abc import AsyncIterator, Collection, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, NoReturn

import anyio
from sqlalchemy import Column, MetaData, PrimaryKeyConstraint, String, Table, inspect, text
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncConnection

from junction.database.engine import Database
from junction.database.tables import PluginTables, version_table
from junction.errors import ConfigError

if TYPE_CHECKING:
    from sqlalchemy.engine import Connection

__all__ = ["MIGRATION_LOCK_ID", "Migration", "pending", "upgrade"]

log = logging.getLogger("junction.database")

MIGRATION_LOCK_ID = 0x4A554E4354494F4E & 0x7FFFFFFFFFFFFFFF
"""The PostgreSQL advisory lock key of Junction's migrations ("JUNCTION" in ASCII)."""

_ASSIGNMENT = re.compile(
    r"^(?P<name>revision|down_revision)\s*(?::[^=]+)?=\s*(?P<value>.+?)\s*$", re.MULTILINE
)
_QUOTED = re.compile(r"""["']([^"']+)["']""")


@dataclass(frozen=True)
class Migration:
    """One plugin's state: the revisions applied and the newest ones its files define."""

    plugin: str
    tables: PluginTables
    applied: frozenset[str]
    heads: frozenset[str] | None
    """None when the revision files could not be read cheaply; Alembic then decides."""

    @property
    def is_current(self) -> bool:
        """Whether nothing is left to apply."""
        return self.heads is not None and self.applied == self.heads


def heads(folder: Path) -> frozenset[str] | None:
    """The newest revisions in ``folder``, read without importing Alembic or the scripts.

    Returns None if a script does not state its revisions as plain string literals.
    """
    revisions: set[str] = set()
    parents: set[str] = set()
    try:
        scripts = sorted(folder.glob("*.py"))
        sources = [script.read_text("utf-8") for script in scripts]
    except OSError:
        return None
    for source in sources:
        found = {m["name"]: m["value"] for m in _ASSIGNMENT.finditer(source)}
        revision = _QUOTED.fullmatch(found.get("revision", ""))
        if revision is None or "down_revision" not in found:
            return None
        revisions.add(revision.group(1))
        down = found["down_revision"]
        if down != "None":
            named = _QUOTED.findall(down)
            if not named:
                return None
            parents.update(named)
    return frozenset(revisions - parents)


async def pending(
    database: Database, owners: Sequence[tuple[str, PluginTables]]
) -> list[Migration]:
    """The plugins whose tables are behind their revision files (one query per plugin).

    Raises :class:`~junction.errors.DatabaseUnavailable` when the database cannot be reached.
    """
    if not owners:
        return []
    states = []
    try:
        async with database.engine.connect() as conn:
            # A plain (deferred) read: it must not queue behind another server's migration.
            conn = await conn.execution_options(sqlite_begin="DEFERRED")
            existing = await _version_tables(conn, database.dialect)
            for plugin, tables in owners:
                applied: frozenset[str] = frozenset()
                table = version_table(plugin)
                if table in existing:
                    # The table name is made of \w characters only (see version_table).
                    rows = await conn.execute(text(f'SELECT version_num FROM "{table}"'))  # noqa: S608
                    applied = frozenset(row[0] for row in rows)
                states.append(Migration(plugin, tables, applied, heads(tables.migrations)))
    except (DBAPIError, OSError, TimeoutError) as exc:
        _reraise(database, exc)
    except TypeError as exc:  # the URL's query holds a keyword the driver's connect lacks
        if "keyword argument" not in str(exc):
            raise
        raise ConfigError(
            f"database_url {database.masked_url}: the database driver refuses an option ({exc})"
        ) from None
    return [state for state in states if not state.is_current]


async def upgrade(database: Database, owners: Sequence[tuple[str, PluginTables]]) -> list[str]:
    """Apply every plugin's missing revisions; return the names of the plugins migrated.

    Called by the core before any plugin starts, and by ``junction db upgrade``. Raises
    :class:`~junction.errors.DatabaseUnavailable` when the database cannot be reached.
    """
    behind = await pending(database, owners)
    if not behind:
        return []
    migrated = []
    async with _migration_lock(database):
        try:
            async with database.engine.connect() as conn:
                for state in behind:
                    async with conn.begin():
                        if database.dialect == "postgresql":
                            await _advisory_lock(conn)
                        changed = await conn.run_sync(_migrate_sync, state, database.dialect)
                    if changed:
                        migrated.append(state.plugin)
                        log.info("migrated the tables of %s", state.plugin)
        except (DBAPIError, OSError, TimeoutError) as exc:
            _reraise(database, exc)
    return migrated


def _reraise(database: Database, exc: Exception) -> NoReturn:
    error = database.translate(exc)
    if error is exc:
        raise exc
    raise error from exc


async def _version_tables(conn: AsyncConnection, dialect: str) -> set[str]:
    if dialect == "postgresql":
        query = (
            "SELECT table_name FROM information_schema.tables "
            "WHERE table_schema = current_schema() AND table_name LIKE 'alembic\\_version\\_%'"
        )
    else:
        query = (
            "SELECT name FROM sqlite_master WHERE type = 'table' AND name LIKE 'alembic_version_%'"
        )
    rows = await conn.execute(text(query))
    return {row[0] for row in rows}


async def _advisory_lock(conn: AsyncConnection) -> None:
    """Take the migration lock for the current transaction, waiting for another server."""
    taken = await conn.scalar(text(f"SELECT pg_try_advisory_xact_lock({MIGRATION_LOCK_ID})"))
    if not taken:
        log.info("waiting for another server to finish migrating the database")
        await conn.execute(text(f"SELECT pg_advisory_xact_lock({MIGRATION_LOCK_ID})"))


@asynccontextmanager
async def _migration_lock(database: Database) -> AsyncIterator[None]:
    """For SQLite, hold ``<file>.migrate.lock`` exclusively; PostgreSQL locks in-transaction."""
    path = database.sqlite_path
    if path is None:
        yield
        return
    lock_path = path.with_name(path.name + ".migrate.lock")
    fd = os.open(lock_path, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        if not _try_flock(fd):
            log.info("waiting for another server to finish migrating %s", path)
            # flock blocks: wait in a worker thread (abandoned if the startup is cancelled).
            await anyio.to_thread.run_sync(fcntl.flock, fd, fcntl.LOCK_EX, abandon_on_cancel=True)
        try:
            yield
        finally:
            fcntl.flock(fd, fcntl.LOCK_UN)
    finally:
        os.close(fd)


def _try_flock(fd: int) -> bool:
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return False
    return True


def _migrate_sync(connection: Connection, state: Migration, dialect: str) -> bool:
    """Bring one plugin up to date on ``connection``, in its open transaction, under the lock.

    A plugin none of whose tables exist yet gets them straight from its metadata, stamped
    with its newest revision (Alembic's recipe for a new database): the first start costs
    no Alembic import and no replay of every revision. Otherwise Alembic applies what is due.
    """
    present = set(inspect(connection).get_table_names())
    table = version_table(state.plugin)
    owned = set(state.tables.metadata.tables)
    if state.heads is not None and owned and table not in present and not present & owned:
        _create_and_stamp(connection, state.tables.metadata, table, state.heads)
        return True
    return _upgrade_sync(connection, state.plugin, state.tables, dialect)


def _create_and_stamp(
    connection: Connection, metadata: MetaData, table: str, heads: frozenset[str]
) -> None:
    """Create ``metadata``'s tables, and a version table as Alembic makes it holding ``heads``."""
    metadata.create_all(connection)
    versions = Table(
        table,
        MetaData(),
        Column("version_num", String(32), nullable=False),
        PrimaryKeyConstraint("version_num", name=f"{table}_pkc"),
    )
    versions.create(connection)
    connection.execute(versions.insert(), [{"version_num": head} for head in sorted(heads)])


def _upgrade_sync(connection: Connection, plugin: str, tables: PluginTables, dialect: str) -> bool:
    """Run a plugin's missing revisions on ``connection`` (in its open transaction).

    Returns whether any revision ran (another server may have applied them meanwhile).
    """
    from alembic.config import Config
    from alembic.migration import MigrationContext, MigrationInfo
    from alembic.runtime.environment import EnvironmentContext
    from alembic.script import ScriptDirectory

    folder = str(tables.migrations)
    config = Config()
    config.set_main_option("script_location", folder)
    script = ScriptDirectory(folder, version_locations=[folder])
    applied: list[str] = []

    def steps(revision: Any, context: Any) -> list[Any]:
        return script._upgrade_revs("heads", revision)

    def record(
        ctx: MigrationContext, step: MigrationInfo, heads: Collection[Any], run_args: Any
    ) -> None:
        applied.append(str(step.up_revision_id))

    with EnvironmentContext(config, script, fn=steps, destination_rev="heads") as env:
        env.configure(
            connection=connection,
            target_metadata=tables.metadata,
            version_table=version_table(plugin),
            render_as_batch=dialect == "sqlite",
            on_version_apply=record,
        )
        with env.begin_transaction():
            env.run_migrations()
    return bool(applied)
