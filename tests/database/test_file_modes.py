"""The SQLite database is readable by the server's account alone, whatever the umask."""

from __future__ import annotations

import os
import stat
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import insert

from junction.database import Database, upgrade
from junction.settings import default_database_url

from .sample import NOTES, TABLES

pytestmark = pytest.mark.anyio


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


@pytest.fixture(autouse=True)
def umask_022() -> Iterator[None]:
    """The usual umask, under which files are world-readable by default."""
    previous = os.umask(0o022)
    try:
        yield
    finally:
        os.umask(previous)


@pytest.fixture
def data_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A fresh Jupyter data directory; Junction's own directory is ``junction`` in it."""
    monkeypatch.setenv("JUPYTER_DATA_DIR", str(tmp_path / "data"))
    return tmp_path / "data"


async def _use(url: str) -> None:
    database = Database(url)
    try:
        await upgrade(database, [("sample", TABLES)])
        async with database.session() as session:
            await session.execute(insert(NOTES).values(text="private"))
        path = database.sqlite_path
        assert path is not None
        for suffix in ("-wal", "-shm"):  # open in WAL mode while the engine lives
            sidecar = path.with_name(path.name + suffix)
            assert sidecar.exists(), sidecar
            assert _mode(sidecar) == 0o600, sidecar
    finally:
        await database.close()


async def test_the_default_database_and_its_directory_are_private(data_dir: Path) -> None:
    await _use(default_database_url())
    assert _mode(data_dir / "junction") == 0o700
    assert _mode(data_dir / "junction" / "junction.db") == 0o600


async def test_an_existing_readable_database_is_tightened(data_dir: Path) -> None:
    directory = data_dir / "junction"
    directory.mkdir(parents=True, mode=0o755)
    directory.chmod(0o755)
    (directory / "junction.db").touch(mode=0o644)
    (directory / "junction.db").chmod(0o644)
    await _use(default_database_url())
    assert _mode(directory) == 0o700
    assert _mode(directory / "junction.db") == 0o600


async def test_a_chosen_directory_keeps_its_mode_but_the_file_is_private(tmp_path: Path) -> None:
    shared = tmp_path / "srv"
    shared.mkdir(mode=0o755)
    shared.chmod(0o755)
    await _use(f"sqlite+aiosqlite:///{shared / 'db.sqlite'}")
    assert _mode(shared) == 0o755
    assert _mode(shared / "db.sqlite") == 0o600
    fresh = tmp_path / "new" / "dir"
    await _use(f"sqlite+aiosqlite:///{fresh / 'db.sqlite'}")
    assert _mode(fresh) == 0o700
