"""PostgreSQL notifications that wake this server when another asks it to restart a kernel.

A server asked to restart a kernel it does not run records the request in the kernel's row
and notifies :data:`~junction.plugins.kernels.records.NOTIFY_CHANNEL` in the same
transaction. Every server on PostgreSQL listens on that channel on a connection of its own
(outside the pool: a listening connection must stay open), so the server that runs the
kernel acts at once rather than at its next heartbeat. The heartbeat still looks for
requests, so a notification lost while the connection was down (or SQLite, which has
none) costs at most a heartbeat.
"""

from __future__ import annotations

import inspect
import logging
from collections.abc import Callable
from typing import Any

import anyio

from junction.database import Database
from junction.plugins.kernels.records import NOTIFY_CHANNEL

__all__ = ["RestartNotices"]

log = logging.getLogger("junction.kernels")

_RETRY = 2.0
"""Seconds between attempts to connect again after the listening connection failed."""

_PING = 30.0
"""Seconds between checks that the listening connection is still alive."""


class RestartNotices:
    """Listens on :data:`NOTIFY_CHANNEL` and calls ``wake`` with each kernel id notified,
    and once (with None) after every (re)connection, to catch up on anything missed."""

    def __init__(self, database: Database, wake: Callable[[str | None], None]) -> None:
        self._database = database
        self._wake = wake

    async def run(self) -> None:
        """Listen until cancelled, connecting again after every failure."""
        import asyncpg  # type: ignore[import-untyped]  # no type hints; PostgreSQL only

        engine = self._database.engine
        _, options = engine.dialect.create_connect_args(engine.url)
        accepted = inspect.signature(asyncpg.connect).parameters  # not SQLAlchemy's own
        options = {k: v for k, v in options.items() if k in accepted}
        failed = False
        while True:
            try:
                await self._listen(options)
            except Exception as exc:  # the database may be away for a while
                if not failed:
                    log.warning("kernels: listening for restart requests failed: %s", exc)
                failed = True
            else:
                failed = False
            await anyio.sleep(_RETRY)

    async def _listen(self, options: dict[str, Any]) -> None:
        """One listening connection, until it is lost."""
        import asyncpg

        connection = await asyncpg.connect(**{"timeout": 10, **options})
        lost = anyio.Event()

        def notified(_conn: object, _pid: int, _channel: str, payload: str) -> None:
            self._wake(payload)

        try:
            connection.add_termination_listener(lambda _conn: lost.set())
            await connection.add_listener(NOTIFY_CHANNEL, notified)
            self._wake(None)
            while not lost.is_set():
                with anyio.move_on_after(_PING):
                    await lost.wait()
                if not lost.is_set():
                    await connection.fetchval("SELECT 1", timeout=10)
        finally:
            with anyio.CancelScope(shield=True), anyio.move_on_after(2):
                try:
                    await connection.close(timeout=2)
                except Exception:
                    connection.terminate()
