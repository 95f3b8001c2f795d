"""A real PostgreSQL for tests, from Debian's ``postgresql`` package binaries.

``postgres_cluster`` runs one server for the whole test session (``initdb`` + ``pg_ctl`` in a
temporary directory, on a free port of 127.0.0.1, ``fsync`` off); ``postgres_url`` gives each
test a fresh, empty database on it; ``database_url`` runs a test once on SQLite and once on
PostgreSQL. PostgreSQL refuses to run as root, so as root the binaries run as the
``postgres`` user the package creates. Missing binaries fail the test, naming the package.
"""

from __future__ import annotations

import contextlib
import glob
import os
import shutil
import subprocess
import tempfile
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from junction.testing import free_port

__all__ = [
    "PostgresCluster",
    "database_url",
    "own_postgres",
    "postgres_cluster",
    "postgres_url",
]


def _bin_dir() -> Path:
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/pg_ctl"))
    if not found:
        pytest.fail("PostgreSQL is missing: apt-get install -y postgresql (.ci/run does it)")
    return Path(found[-1]).parent


class PostgresCluster:
    """One PostgreSQL server in ``directory``, listening on 127.0.0.1:``port``."""

    def __init__(self, directory: Path) -> None:
        self.bin = _bin_dir()
        self.directory = directory
        self.data = directory / "data"
        self.port = free_port()
        self._as_root = os.geteuid() == 0

    def _run(self, *command: str) -> subprocess.CompletedProcess[str]:
        prefix = ["runuser", "-u", "postgres", "--"] if self._as_root else []
        done = subprocess.run(
            [*prefix, *command], capture_output=True, text=True, check=False, timeout=60
        )
        if done.returncode != 0:
            raise RuntimeError(f"{' '.join(command)} failed:\n{done.stdout}\n{done.stderr}")
        return done

    def init(self) -> PostgresCluster:
        """Create the cluster (trust authentication on loopback only)."""
        self.directory.mkdir(parents=True, exist_ok=True)
        if self._as_root:
            shutil.chown(self.directory, "postgres", "postgres")
        self._run(
            str(self.bin / "initdb"),
            "-D",
            str(self.data),
            "-U",
            "postgres",
            "--auth=trust",
            "--no-sync",
            "--encoding=UTF8",
            "--locale=C",
        )
        return self

    def start(self) -> None:
        """Start the server and wait until it accepts connections."""
        options = (
            f"-p {self.port} -k {self.directory} -c listen_addresses=127.0.0.1 "
            # No fsync (the machine does not crash under a test), but every commit reaches the
            # WAL before it returns: an immediate stop must not forget committed transactions.
            "-c fsync=off -c full_page_writes=off"
        )
        log = str(self.directory / "server.log")
        self._run(
            str(self.bin / "pg_ctl"), "-D", str(self.data), "-l", log, "-o", options, "-w", "start"
        )

    def stop(self) -> None:
        """Stop the server now (open connections are cut)."""
        self._run(str(self.bin / "pg_ctl"), "-D", str(self.data), "-m", "immediate", "-w", "stop")

    def sql(self, statement: str, database: str = "postgres") -> str:
        """Run one statement with ``psql``; returns its unaligned output."""
        done = self._run(
            str(self.bin / "psql"),
            "-h",
            "127.0.0.1",
            "-p",
            str(self.port),
            "-U",
            "postgres",
            "-d",
            database,
            "-v",
            "ON_ERROR_STOP=1",
            "-At",
            "-c",
            statement,
        )
        return done.stdout.strip()

    def url(self, database: str = "postgres", password: str | None = None) -> str:
        """The SQLAlchemy URL of ``database`` on this server."""
        user = "postgres" if password is None else f"postgres:{password}"
        return f"postgresql+asyncpg://{user}@127.0.0.1:{self.port}/{database}"

    def create_database(self) -> str:
        """A new empty database; returns its name."""
        name = "t_" + uuid.uuid4().hex[:16]
        self.sql(f"CREATE DATABASE {name} TEMPLATE template0")
        return name


@pytest.fixture(scope="session")
def postgres_cluster() -> Iterator[PostgresCluster]:
    """One PostgreSQL server for the test session, stopped and removed at the end."""
    directory = Path(tempfile.mkdtemp(prefix="junction-pg-"))
    cluster = PostgresCluster(directory).init()
    cluster.start()
    try:
        yield cluster
    finally:
        try:
            cluster.stop()
        finally:
            shutil.rmtree(directory, ignore_errors=True)


@pytest.fixture
def own_postgres() -> Iterator[PostgresCluster]:
    """A PostgreSQL server of this test's own, which it may stop and start.

    Its directory is outside pytest's (private to root), so the postgres user can enter it.
    """
    directory = Path(tempfile.mkdtemp(prefix="junction-pg-"))
    cluster = PostgresCluster(directory).init()
    cluster.start()
    try:
        yield cluster
    finally:
        with contextlib.suppress(RuntimeError):  # already stopped by the test
            cluster.stop()
        shutil.rmtree(directory, ignore_errors=True)


@pytest.fixture
def postgres_url(postgres_cluster: PostgresCluster) -> Iterator[str]:
    """A ``postgresql+asyncpg://`` URL of a fresh database, dropped after the test."""
    name = postgres_cluster.create_database()
    yield postgres_cluster.url(name)
    postgres_cluster.sql(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")


@pytest.fixture(params=["sqlite", "postgresql"])
def database_url(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> str:
    """The same test on an SQLite file and on a PostgreSQL database."""
    if request.param == "sqlite":
        path = tmp_path_factory.mktemp("sqlite") / "junction.db"
        return f"sqlite+aiosqlite:///{path}"
    url: str = request.getfixturevalue("postgres_url")
    return url
