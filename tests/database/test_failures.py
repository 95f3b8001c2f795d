"""When the database fails: unreachable at startup (the server refuses to start, naming the
URL without its password), unreachable while serving (503 for requests that need it, the rest
unaffected, recovery on its own), and a full disk (507, nothing corrupted)."""

from __future__ import annotations

import logging
import os
import subprocess
import sys
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import event, text

from junction.database import Database
from junction.errors import DatabaseUnavailable
from junction.services import DATABASE
from junction.testing import ServerProcess, app_client, free_port

pytestmark = pytest.mark.anyio

THEMES = "@jupyterlab/apputils-extension:themes"


def workspace(workspace_id: str, **data: Any) -> dict[str, Any]:
    """A workspace body as the UI sends it."""
    return {"data": data, "metadata": {"id": workspace_id}}


def unreachable_urls(tmp_path: Path) -> list[tuple[str, str]]:
    """(URL, what its masked form looks like) for a PostgreSQL nobody listens on and an
    SQLite file that cannot be created."""
    port = free_port()
    (tmp_path / "a-file").write_text("")
    return [
        (
            f"postgresql+asyncpg://postgres:s3cret-pw@127.0.0.1:{port}/nothing",
            f"postgresql+asyncpg://postgres:***@127.0.0.1:{port}/nothing",
        ),
        (f"sqlite+aiosqlite:///{tmp_path}/a-file/junction.db", f"{tmp_path}/a-file/junction.db"),
    ]


@pytest.fixture
def lab_sections(tmp_path: Path) -> dict[str, dict[str, Any]]:
    """The lab's files in the test's own directory."""
    return {"lab": {"data_dir": str(tmp_path / "lab-data")}}


async def test_unreachable_database_stops_an_in_process_startup(
    tmp_path: Path, lab_sections: dict[str, dict[str, Any]], caplog: pytest.LogCaptureFixture
) -> None:
    for url, masked in unreachable_urls(tmp_path):
        with pytest.raises(DatabaseUnavailable):
            async with app_client(
                enable=["frontend", "lab"], plugin_settings=lab_sections, database_url=url
            ):
                pass  # pragma: no cover - never reached
        assert f"cannot open the database {masked}" in caplog.text or masked in caplog.text
        assert "s3cret-pw" not in caplog.text


def test_server_with_an_unreachable_database_exits_naming_it(tmp_path: Path) -> None:
    for number, (url, masked) in enumerate(unreachable_urls(tmp_path)):
        server = ServerProcess(
            ["--port", "0", "--ip", "127.0.0.1", "--profile", "full", "--root-dir", str(tmp_path)],
            log_path=tmp_path / f"server-{number}.log",
        )
        os.environ["JUNCTION_DATABASE_URL"] = url
        try:
            with pytest.raises(RuntimeError, match="exited early"):
                server.start(timeout=60)
        finally:
            del os.environ["JUNCTION_DATABASE_URL"]
        log = server.log()
        assert server.process is not None
        assert server.process.returncode != 0
        assert "cannot open the database" in log
        assert masked in log
        assert "s3cret-pw" not in log


def test_db_upgrade_migrates_once_then_has_nothing_to_do(database_url: str) -> None:
    env = {**os.environ, "JUNCTION_DATABASE_URL": database_url}
    command = [sys.executable, "-m", "junction.cli", "db", "upgrade", "--profile", "full"]
    first = subprocess.run(command, capture_output=True, text=True, env=env, timeout=120)
    again = subprocess.run(command, capture_output=True, text=True, env=env, timeout=120)
    assert first.returncode == 0, first.stderr
    migrated = first.stdout.strip().rsplit(": ", 1)[1].split(", ")
    assert {"lab", "sessions"} <= set(migrated)
    assert again.returncode == 0, again.stderr
    assert again.stdout.strip().endswith(": nothing to migrate")


def test_db_upgrade_names_an_unreachable_database_without_its_password(tmp_path: Path) -> None:
    url, masked = unreachable_urls(tmp_path)[0]
    env = {**os.environ, "JUNCTION_DATABASE_URL": url}
    done = subprocess.run(
        [sys.executable, "-m", "junction.cli", "db", "upgrade"],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
    )
    assert done.returncode == 1
    assert f"cannot reach the database {masked}" in done.stderr
    assert "s3cret-pw" not in done.stderr + done.stdout


async def test_database_down_while_serving_gives_503_then_recovers(
    own_postgres: Any, lab_sections: dict[str, dict[str, Any]], caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="junction.database")
    async with app_client(
        enable=["frontend", "lab"], plugin_settings=lab_sections, database_url=own_postgres.url()
    ) as client:
        saved = await client.put("/lab/api/workspaces/w", json=workspace("w", a=1))
        settings = await client.get(f"/lab/api/settings/{THEMES}")
        own_postgres.stop()
        down = await client.put("/lab/api/workspaces/w", json=workspace("w", a=2))
        listing = await client.get("/lab/api/workspaces")
        status = await client.get("/api/status")
        cached = await client.get(f"/lab/api/settings/{THEMES}")
        own_postgres.start()
        back = await client.put("/lab/api/workspaces/w", json=workspace("w", a=3))
        got = await client.get("/lab/api/workspaces/w")
    assert (saved.status_code, settings.status_code) == (204, 200)
    assert down.status_code == 503
    assert down.json()["reason"] == "DatabaseUnavailable"
    assert "unavailable" in down.json()["message"]
    assert listing.status_code == 503
    assert status.status_code == 200  # requests that need no database keep working
    assert cached.status_code == 200  # settings are served from memory
    assert back.status_code == 204  # recovered without a restart
    assert got.json()["data"] == {"a": 3}
    # One warning for the outage, however many requests met it, and one line at its end.
    outage = [r.getMessage() for r in caplog.records if "unavailable" in r.getMessage()]
    assert len(outage) == 1, outage
    assert any("reachable again (" in r.getMessage() for r in caplog.records)


@pytest.fixture
async def sqlite_client(
    tmp_path: Path, lab_sections: dict[str, dict[str, Any]]
) -> AsyncIterator[Any]:
    """A lab over an SQLite file in the test's directory."""
    url = f"sqlite+aiosqlite:///{tmp_path}/full.db"
    async with app_client(
        enable=["frontend", "lab"], plugin_settings=lab_sections, database_url=url
    ) as client:
        yield client


async def test_full_sqlite_disk_gives_507_and_corrupts_nothing(sqlite_client: Any) -> None:
    database: Database = sqlite_client.app.state.services.get(DATABASE)
    before = await sqlite_client.put("/lab/api/workspaces/kept", json=workspace("kept", a=1))
    # Reopen with a page limit at the current size: SQLite then fails writes that grow the
    # file with SQLITE_FULL, exactly as on a full disk.
    await database.close()

    def limit(dbapi_connection: Any, record: Any) -> None:
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA page_count")
        pages = cursor.fetchone()[0]
        cursor.execute(f"PRAGMA max_page_count = {pages}")
        cursor.close()

    event.listen(database.engine.sync_engine, "connect", limit)
    big = workspace("big", blob="x" * 2_000_000)
    full = await sqlite_client.put("/lab/api/workspaces/big", json=big)
    still = await sqlite_client.get("/lab/api/workspaces/kept")
    await database.close()  # the next engine has no limit: space was freed
    async with database.session() as session:
        check = (await session.execute(text("PRAGMA integrity_check"))).scalar()
    later = await sqlite_client.put("/lab/api/workspaces/big", json=big)
    ids = (await sqlite_client.get("/lab/api/workspaces")).json()["workspaces"]["ids"]
    assert before.status_code == 204
    assert full.status_code == 507
    assert full.json()["reason"] == "Insufficient Storage"
    assert "full" in full.json()["message"]
    assert still.json()["data"] == {"a": 1}
    assert check == "ok"
    assert later.status_code == 204
    assert ids == ["big", "kept"]
