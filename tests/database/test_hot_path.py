"""The database stays off the hot path: requests that only read make no query."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import event

from junction.database import Database
from junction.services import DATABASE
from junction.testing import app_client

pytestmark = pytest.mark.anyio

THEMES = "@jupyterlab/apputils-extension:themes"


async def test_reading_requests_make_no_query(tmp_path: Path) -> None:
    (tmp_path / "root").mkdir()
    (tmp_path / "root" / "a.txt").write_text("hello")
    statements: list[str] = []

    def count(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        statements.append(statement)

    async with app_client(
        enable=["contents", "frontend", "lab"],
        plugin_settings={"lab": {"data_dir": str(tmp_path / "lab-data")}},
        root_dir=tmp_path / "root",
    ) as client:
        database: Database = client.app.state.services.get(DATABASE)
        event.listen(database.engine.sync_engine, "before_cursor_execute", count)
        first = await client.get(f"/lab/api/settings/{THEMES}")  # loads every row, once
        loaded = len(statements)
        for path in ("/api/status", "/api/contents", "/api/contents/a.txt", "/api"):
            assert (await client.get(path)).status_code == 200
        again = await client.get(f"/lab/api/settings/{THEMES}")
        listing = await client.get("/lab/api/settings")
        reads = len(statements) - loaded
        saved = await client.put(f"/lab/api/settings/{THEMES}", json={"raw": "{}"})
        writes = len(statements) - loaded - reads
    assert (first.status_code, again.status_code, listing.status_code) == (200, 200, 200)
    assert loaded >= 1
    assert reads == 0
    assert saved.status_code == 204
    assert writes >= 1  # saves write through
