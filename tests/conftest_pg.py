"""A real PostgreSQL for tests, from Debian's ``postgresql`` package binaries.

``postgres_cluster`` runs one server for the whole test session (``initdb`` + ``pg_ctl`` in a
temporary directory, on a free port of 127.0.0.1, ``fsync`` off); ``postgres_url`` gives each
test a fresh, empty database on it; ``database_url`` runs a test once on SQLite and once on
PostgreSQL. PostgreSQL refuses to run as root, so as root the binaries run as the
``postgres`` user the package creates. Missing binaries fail the test, naming the package.
"""

from __future__ import annotations

import contextlib
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from junction.testing import PostgresCluster, PostgresMissing

__all__ = [
    "PostgresCluster",
    "database_url",
    "own_postgres",
    "postgres_cluster",
    "postgres_url",
]


def _cluster(directory: Path) -> PostgresCluster:
    try:
        return PostgresCluster(directory).init()
    except PostgresMissing as exc:
        pytest.fail(f"{exc} (.ci/run does it)")


@pytest.fixture(scope="session")
def postgres_cluster() -> Iterator[PostgresCluster]:
    """One PostgreSQL server for the test session, stopped and removed at the end."""
    directory = Path(tempfile.mkdtemp(prefix="junction-pg-"))
    cluster = _cluster(directory)
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
    cluster = _cluster(directory)
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
