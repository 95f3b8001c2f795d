"""``Database``: one async SQLAlchemy engine for every plugin, and the errors it maps.

SQLite (the default) is opened the way a server with several writers needs it: WAL (readers
never block the writer), a busy timeout (a writer waits for another instead of failing), and
``BEGIN IMMEDIATE`` so a transaction that reads then writes takes the write lock up front
rather than failing with "database is locked" when it upgrades (sqlite3's own mode sends no
``BEGIN`` at all before DDL, which would also break transactional migrations).

PostgreSQL connections are checked before use (``pool_pre_ping``), so after the server
restarts the first request gets a fresh connection instead of an error.
"""

from __future__ import annotations

import logging
import os
import sqlite3
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

import anyio
from sqlalchemy import event, text
from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import (
    ArgumentError,
    DBAPIError,
    InterfaceError,
    NoSuchModuleError,
    OperationalError,
)
from sqlalchemy.exc import TimeoutError as PoolTimeout
from sqlalchemy.ext.asyncio import (
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)

from junction.errors import ConfigError, DatabaseUnavailable, HTTPError, InsufficientStorage
from junction.logs import WarningThrottle

__all__ = [
    "BUSY_TIMEOUT",
    "CONNECT_TIMEOUT",
    "Database",
    "DatabaseFull",
    "ShieldedSession",
    "masked_url",
    "url_secrets",
]

log = logging.getLogger("junction.database")

BUSY_TIMEOUT = 10.0
"""Seconds an SQLite writer waits for another's lock before giving up with a 503."""
CONNECT_TIMEOUT = 10.0
"""Seconds a PostgreSQL connection attempt may take before the database counts as down."""
CLEANUP_WAIT = 5.0
"""Seconds a cancelled or failed transaction may take to roll back and return its connection."""

_DRIVERS = frozenset({("sqlite", "aiosqlite"), ("postgresql", "asyncpg")})
_PG_DISK_FULL = "53100"  # PostgreSQL SQLSTATE disk_full
# SQLSTATEs of a server that cannot take work now: too many connections, shutting down,
# crashed, starting up (asyncpg raises these at connect, not as OperationalError).
_PG_UNAVAILABLE = frozenset({"53300", "57P01", "57P02", "57P03"})
_SQLITE_UNAVAILABLE = frozenset(
    {
        sqlite3.SQLITE_PERM,
        sqlite3.SQLITE_BUSY,
        sqlite3.SQLITE_LOCKED,
        sqlite3.SQLITE_READONLY,
        sqlite3.SQLITE_IOERR,
        sqlite3.SQLITE_CANTOPEN,
        sqlite3.SQLITE_PROTOCOL,
    }
)


class DatabaseFull(InsufficientStorage):
    """The database's disk is full; the transaction was rolled back, nothing was changed (507)."""


_SECRET_QUERY_KEYS = frozenset({"password", "passwd", "pwd", "sslpassword"})
"""Query parameters that drivers take a password from (``?password=`` for asyncpg, ...)."""


def masked_url(url: str | URL) -> str:
    """The URL with its password, in the authority or the query, replaced by ``***``, for
    logs and error messages."""
    try:
        parsed = make_url(url) if isinstance(url, str) else url
    except (ArgumentError, ValueError):
        return "<unparseable database URL>"
    query = {
        key: "***" if key.lower() in _SECRET_QUERY_KEYS else value
        for key, value in parsed.query.items()
    }
    shown = parsed.set(query=query).render_as_string(hide_password=True)
    return shown.replace("%2A%2A%2A", "***")


def url_secrets(url: URL) -> list[str]:
    """The passwords a URL holds (authority and query), to scrub from a driver's message."""
    found = [url.password] if url.password else []
    for key, value in url.query.items():
        if key.lower() in _SECRET_QUERY_KEYS:
            found += [value] if isinstance(value, str) else list(value)
    return [secret for secret in found if secret]


class ShieldedSession(AsyncSession):
    """An :class:`AsyncSession` whose statements, once sent, finish before a cancellation
    lands (bounded by the busy timeout and the connection's own timeouts).

    Cancelled inside the driver, SQLAlchemy invalidates the connection and leaves a
    close task behind that the event loop may never finish, which hangs the server's exit;
    cancelled between statements, the transaction is simply rolled back.
    """

    if not TYPE_CHECKING:  # the checker keeps AsyncSession's precise signatures

        async def execute(self, *args: Any, **kwargs: Any) -> Any:
            """:meth:`AsyncSession.execute`, shielded from cancellation."""
            with anyio.CancelScope(shield=True):
                return await super().execute(*args, **kwargs)

        async def scalar(self, *args: Any, **kwargs: Any) -> Any:
            """:meth:`AsyncSession.scalar`, shielded from cancellation."""
            with anyio.CancelScope(shield=True):
                return await super().scalar(*args, **kwargs)


class Database:
    """The database every plugin shares (service key :data:`~junction.services.DATABASE`).

    Creating one connects to nothing; the engine is made on first use and
    :meth:`close` disposes of it. :meth:`session` is how plugins run queries.
    """

    def __init__(self, url: str) -> None:
        try:
            self.url = make_url(url)
        except (ArgumentError, ValueError):  # ValueError: a port that is not a number
            raise ConfigError(f"database_url is not a database URL: {masked_url(url)}") from None
        # Read from the URL itself: get_driver_name() loads the dialect, which fails with a
        # traceback on a database type SQLAlchemy does not know.
        dialect, _, driver = self.url.drivername.partition("+")
        if (dialect, driver) not in _DRIVERS:
            raise ConfigError(
                f"database_url must be sqlite+aiosqlite:// or postgresql+asyncpg://, "
                f"not {masked_url(self.url)}"
            )
        self.dialect: str = dialect
        self._engine: AsyncEngine | None = None
        self._failures = 0  # since the database was last reached
        self._outage_warnings = WarningThrottle(log)
        self._sessions: async_sessionmaker[ShieldedSession] | None = None

    def __repr__(self) -> str:
        return f"Database({masked_url(self.url)!r})"

    @property
    def masked_url(self) -> str:
        """The URL without its password, as logs and errors show it."""
        return masked_url(self.url)

    @property
    def sqlite_path(self) -> Path | None:
        """The SQLite file, or None (PostgreSQL, or an in-memory SQLite database)."""
        if self.dialect != "sqlite" or self.url.database in (None, "", ":memory:"):
            return None
        return Path(str(self.url.database))

    @property
    def engine(self) -> AsyncEngine:
        """The async engine, created on first use (connections are opened lazily)."""
        if self._engine is None:
            self._engine = self._create_engine()
        return self._engine

    @asynccontextmanager
    async def session(self) -> AsyncIterator[ShieldedSession]:
        """A transaction: committed when the block exits, rolled back if it raises.

        Raises :class:`~junction.errors.DatabaseUnavailable` when the database cannot be
        reached (or SQLite stays locked past :data:`BUSY_TIMEOUT`), :class:`DatabaseFull`
        when its disk is full.
        """
        try:
            session = self._session_factory()()
            try:
                await session.begin()
                yield session
                with anyio.CancelScope(shield=True):
                    await session.commit()
                if self._failures:
                    log.info(
                        "database %s reachable again (%d failures)",
                        self.masked_url,
                        self._failures,
                    )
                    self._failures = 0
                    self._outage_warnings.reset()
            except BaseException:
                # Cancelled or failed: roll back and close shielded (bounded), so the
                # connection goes back to the pool clean instead of being left to a
                # background task the event loop may never finish.
                with anyio.CancelScope(shield=True), anyio.move_on_after(CLEANUP_WAIT):
                    await session.rollback()
                raise
            finally:
                with anyio.CancelScope(shield=True), anyio.move_on_after(CLEANUP_WAIT):
                    await session.close()
        except (DBAPIError, OSError, PoolTimeout, TimeoutError) as exc:
            if isinstance(exc, HTTPError):  # e.g. Forbidden, a PermissionError: the caller's
                raise
            error = self.translate(exc)
            if error is exc:
                raise
            raise error from exc

    def _session_factory(self) -> async_sessionmaker[ShieldedSession]:
        if self._sessions is None:
            self._sessions = async_sessionmaker(
                self.engine, class_=ShieldedSession, expire_on_commit=False
            )
        return self._sessions

    async def ping(self) -> None:
        """Run ``SELECT 1``; raises like :meth:`session`. Called at startup."""
        async with self.session() as session:
            await session.execute(text("SELECT 1"))

    def translate(self, exc: Exception) -> Exception:
        """The domain error for a driver error: full disk, unreachable, or ``exc`` itself."""
        if _is_disk_full(exc):
            log.error("database %s is out of space: %s", self.masked_url, _first_line(exc))
            return DatabaseFull("the database's disk is full; nothing was saved")
        if _is_unreachable(exc):
            self._log_unavailable(exc)
            return DatabaseUnavailable(
                "the database is unavailable; try again shortly", reason="DatabaseUnavailable"
            )
        return exc

    def _log_unavailable(self, exc: Exception) -> None:
        """A warning when an outage begins, then at most one a minute while it lasts (every
        request and poller meets it; the log must not)."""
        self._failures += 1
        self._outage_warnings.warning(
            "database %s unavailable: %s", self.masked_url, _first_line(exc)
        )

    async def close(self) -> None:
        """Close every pooled connection. Called when the server stops."""
        if self._engine is not None:
            await self._engine.dispose()
            self._engine = None
            self._sessions = None

    def _create_engine(self) -> AsyncEngine:
        if self.dialect == "postgresql":
            return self._create(
                pool_pre_ping=True, connect_args={"timeout": CONNECT_TIMEOUT}, pool_timeout=30
            )
        path = self.sqlite_path
        if path is not None:
            _private_sqlite_file(path)
        engine = self._create(connect_args={"timeout": BUSY_TIMEOUT})
        event.listen(engine.sync_engine, "connect", _sqlite_connect)
        event.listen(engine.sync_engine, "begin", _sqlite_begin)
        return engine

    def _create(self, **options: Any) -> AsyncEngine:
        try:
            return create_async_engine(self.url, **options)
        except (ArgumentError, NoSuchModuleError) as exc:
            raise ConfigError(f"cannot use database {self.masked_url}: {exc}") from None


def _private_sqlite_file(path: Path) -> None:
    """Create the SQLite file (and a missing directory) readable by this account alone.

    The database holds password hashes and identity provider tokens. SQLite gives its
    ``-wal`` and ``-shm`` files the database file's mode, so they follow. An existing file
    with group or other bits is tightened; so is Junction's own data directory, while a
    directory the administrator chose for ``database_url`` is left as it is.
    """
    from jupyter_core.paths import jupyter_data_dir

    directory = path.parent
    directory.mkdir(mode=0o700, parents=True, exist_ok=True)
    if directory == Path(jupyter_data_dir()) / "junction":
        _tighten(directory, 0o700)
    os.close(os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600))
    for file in (path, path.with_name(path.name + "-wal"), path.with_name(path.name + "-shm")):
        _tighten(file, 0o600)


def _tighten(path: Path, mode: int) -> None:
    """Drop group and other permission bits of a file or directory this account owns."""
    try:
        info = path.stat()
        if info.st_uid == os.getuid() and info.st_mode & 0o077:
            path.chmod(mode)
    except FileNotFoundError:
        pass


def _sqlite_connect(dbapi_connection: Any, record: Any) -> None:
    """Per new SQLite connection: WAL, foreign keys, and BEGIN under our control."""
    dbapi_connection.isolation_level = None  # we send BEGIN ourselves (see _sqlite_begin)
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")  # durable with WAL except on power loss
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.close()


def _sqlite_begin(connection: Any) -> None:
    """Start every transaction as a writer, so read-then-write never hits SQLITE_BUSY."""
    mode = connection.get_execution_options().get("sqlite_begin", "IMMEDIATE")
    connection.exec_driver_sql(f"BEGIN {mode}")


def _is_unreachable(exc: BaseException) -> bool:
    """Whether ``exc`` says the database cannot be used right now (not that the query is bad)."""
    if isinstance(exc, OSError | PoolTimeout | TimeoutError):
        return True
    if not isinstance(exc, DBAPIError):
        return False
    if exc.connection_invalidated or isinstance(exc, InterfaceError):
        return True
    if isinstance(exc.orig, sqlite3.Error):
        # SQLite reports bad SQL as OperationalError too; only these codes mean "unusable".
        code = (getattr(exc.orig, "sqlite_errorcode", None) or 0) & 0xFF
        return code in _SQLITE_UNAVAILABLE
    sqlstate = getattr(exc.orig, "sqlstate", None)
    if sqlstate in _PG_UNAVAILABLE or (isinstance(sqlstate, str) and sqlstate.startswith("08")):
        return True
    return isinstance(exc, OperationalError)


def _is_disk_full(exc: BaseException) -> bool:
    original = getattr(exc, "orig", None)
    if isinstance(original, sqlite3.Error) or isinstance(exc, sqlite3.Error):
        error = original if isinstance(original, sqlite3.Error) else exc
        return getattr(error, "sqlite_errorcode", None) == sqlite3.SQLITE_FULL
    if getattr(original, "sqlstate", None) == _PG_DISK_FULL:
        return True
    return "database or disk is full" in str(exc) or (isinstance(exc, OSError) and exc.errno == 28)


def _first_line(exc: BaseException) -> str:
    lines = str(exc).strip().splitlines()
    return lines[0] if lines else type(exc).__name__
