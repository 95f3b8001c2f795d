"""A session store in the shared database (table ``sessions_sessions``).

Sessions outlive a restart of the server here, and so do their kernels with
``kernels.keep_on_shutdown`` (the kernels plugin reattaches them with the same ids); a
session whose kernel is gone is dropped the first time the service reads it (see
:class:`~junction.plugins.sessions.manager.StoredSessions`), so none is ever shown with a
stale kernel. Each method is one transaction.
"""

from __future__ import annotations

import time
from typing import Any

from sqlalchemy import delete, insert, select, update

from junction.database import Database
from junction.plugins.sessions.service import SessionRecord
from junction.plugins.sessions.tables import SESSIONS_TABLE

__all__ = ["TableSessionStore"]

_COLUMNS = (
    SESSIONS_TABLE.c.id,
    SESSIONS_TABLE.c.path,
    SESSIONS_TABLE.c.name,
    SESSIONS_TABLE.c.type,
    SESSIONS_TABLE.c.kernel_id,
)


class TableSessionStore:
    """A :class:`~junction.plugins.sessions.service.SessionStore` over ``sessions_sessions``.

    Every method raises :class:`~junction.errors.DatabaseUnavailable` when the database
    cannot be reached.
    """

    def __init__(self, database: Database) -> None:
        self._database = database

    async def add(self, record: SessionRecord) -> None:
        """Keep a new record, after every existing one in :meth:`list` order."""
        async with self._database.session() as session:
            await session.execute(
                insert(SESSIONS_TABLE).values(seq=time.time_ns(), **_values(record))
            )

    async def get(self, session_id: str) -> SessionRecord | None:
        """Return the record with this id, or None."""
        return await self._one(SESSIONS_TABLE.c.id == session_id)

    async def find(self, *, path: str) -> SessionRecord | None:
        """Return the (oldest) record for a document path, or None."""
        return await self._one(SESSIONS_TABLE.c.path == path)

    async def with_kernel(self, kernel_id: str) -> list[SessionRecord]:
        """Return the records of every session using this kernel."""
        return await self._many(SESSIONS_TABLE.c.kernel_id == kernel_id)

    async def replace(self, record: SessionRecord) -> None:
        """Overwrite the record with ``record.id``, if it is still kept."""
        values = _values(record)
        del values["id"]
        async with self._database.session() as session:
            await session.execute(
                update(SESSIONS_TABLE).where(SESSIONS_TABLE.c.id == record.id).values(**values)
            )

    async def remove(self, session_id: str) -> None:
        """Forget a record, if kept."""
        async with self._database.session() as session:
            await session.execute(delete(SESSIONS_TABLE).where(SESSIONS_TABLE.c.id == session_id))

    async def _one(self, condition: Any) -> SessionRecord | None:
        found = await self._many(condition, limit=1)
        return found[0] if found else None

    async def _many(self, condition: Any = None, limit: int | None = None) -> list[SessionRecord]:
        query = select(*_COLUMNS).order_by(SESSIONS_TABLE.c.seq, SESSIONS_TABLE.c.id)
        if condition is not None:
            query = query.where(condition)
        if limit is not None:
            query = query.limit(limit)
        async with self._database.session() as session:
            rows = (await session.execute(query)).all()
        return [SessionRecord(*row) for row in rows]

    # Defined last: below it, in this class, ``list`` would name the method, not the type.
    async def list(self) -> list[SessionRecord]:
        """Return every record, oldest first."""
        return await self._many()


def _values(record: SessionRecord) -> dict[str, Any]:
    return {
        "id": record.id,
        "path": record.path,
        "name": record.name,
        "type": record.type,
        "kernel_id": record.kernel_id,
    }
