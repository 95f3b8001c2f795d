"""A transaction cancelled mid-statement: the connection goes back to the pool whole, and no
task is left for the event loop to finish (one left behind could hang the server's exit)."""

from __future__ import annotations

import asyncio
from pathlib import Path

import anyio
import pytest
from sqlalchemy import text

from junction.database import Database

pytestmark = pytest.mark.anyio

SLOW = text(
    "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c WHERE x < 2000000) "
    "SELECT count(*) FROM c"
)


async def test_a_statement_cancelled_midway_finishes_and_leaves_nothing_behind(
    tmp_path: Path,
) -> None:
    database = Database(f"sqlite+aiosqlite:///{tmp_path / 'test.db'}")
    try:
        async with database.session() as session:  # connect before timing anything
            await session.execute(text("SELECT 1"))
        with anyio.move_on_after(0.02) as scope:
            async with database.session() as session:
                await session.execute(SLOW)
                await anyio.sleep(30)  # the cancellation lands here, after the statement
        assert scope.cancelled_caught
        async with database.session() as session:
            assert (await session.execute(text("SELECT 1"))).scalar() == 1
        pool = database.engine.pool
        assert pool.checkedout() == 0  # type: ignore[attr-defined]
    finally:
        await database.close()
    left = [task for task in asyncio.all_tasks() if task is not asyncio.current_task()]
    assert not [task for task in left if "terminate" in repr(task)], left
