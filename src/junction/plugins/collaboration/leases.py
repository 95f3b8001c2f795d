"""``Leases``: one owner per room when several servers share one database.

Each server process that opens a room takes the room's lease in ``collaboration_leases``
first, in one statement: an INSERT that, when the row exists, updates it only if it expired
or is already this process's. The owner renews every lease it holds (one UPDATE for all of
them) every third of ``room_lease_seconds``, and deletes a room's lease when the room
closes. A server that finds the lease held by another refuses the room
(:class:`RoomOwnedElsewhere`) and never saves its file; when the owner dies, its leases
expire and the next server to open the room takes it. A server restarted on the same host
does not wait for that: a lease whose owner ran here under a process id that no longer
exists is taken at once (so a crashed server's rooms open again as soon as it is back).
Times are Unix times, so the servers' clocks should agree to well within a lease.
"""

from __future__ import annotations

import os
import socket
import time
from collections.abc import Collection
from typing import Any

from sqlalchemy import CursorResult, Result, delete, select, update

from junction.database import Database
from junction.errors import ServiceUnavailable
from junction.plugins.collaboration.tables import LEASES_TABLE

__all__ = ["Leases", "RoomOwnedElsewhere"]


def _process_gone(pid: int) -> bool:
    """Whether no process ``pid`` runs on this host (a zero or negative pid is unknown)."""
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    except PermissionError:  # it exists, under another account
        return False
    return False


def _rowcount(result: Result[Any]) -> int:
    # An INSERT ... ON CONFLICT DO UPDATE ... WHERE counts 0 rows when the WHERE was false.
    return result.rowcount if isinstance(result, CursorResult) else 0


class RoomOwnedElsewhere(ServiceUnavailable):
    """Another server process holds the room's lease (503; WebSocket close code 4503)."""

    def __init__(self, room_id: str, owner: str) -> None:
        super().__init__(f"room {room_id} is open on another server", reason="owned_elsewhere")
        self.room_id = room_id
        self.owner = owner

    def body(self) -> dict[str, Any]:
        """The JSON error body, with the owner's ``sessionId``."""
        return {**super().body(), "owner": self.owner}


class Leases:
    """The room leases of one server process, ``owner`` (its ``sessionId``)."""

    def __init__(self, database: Database, owner: str, *, seconds: float) -> None:
        self.database = database
        self.owner = owner
        self.seconds = seconds
        self.host = socket.gethostname()
        self.pid = os.getpid()

    async def take(self, room_id: str) -> None:
        """Take or keep the lease of ``room_id`` (called when the room opens).

        Raises :class:`RoomOwnedElsewhere` when another process holds an unexpired lease.
        """
        from sqlalchemy.dialects import postgresql, sqlite  # here: PostgreSQL's is 2.4 MB

        now = time.time()
        mine = {"owner": self.owner, "expires_at": now + self.seconds}
        mine |= {"host": self.host, "pid": self.pid}
        insert: Any = postgresql.insert if self.database.dialect == "postgresql" else sqlite.insert
        table = LEASES_TABLE
        statement = (
            insert(table)
            .values(room_id=room_id, **mine)
            .on_conflict_do_update(
                index_elements=[table.c.room_id],
                set_=mine,
                where=(table.c.expires_at < now) | (table.c.owner == self.owner),
            )
        )
        async with self.database.session() as session:
            if _rowcount(await session.execute(statement)):
                return
        holder = await self._holder(room_id)
        if holder is not None and holder.host == self.host and _process_gone(holder.pid):
            # The owner ran on this host and has died: take its lease without waiting.
            async with self.database.session() as session:
                taken = await session.execute(
                    update(table)
                    .where((table.c.room_id == room_id) & (table.c.owner == holder.owner))
                    .values(**mine)
                )
            if _rowcount(taken):
                return
            holder = await self._holder(room_id)
        if holder is None:  # released or expired just now: try once more
            async with self.database.session() as session:
                if _rowcount(await session.execute(statement)):
                    return
            holder = await self._holder(room_id)
        raise RoomOwnedElsewhere(room_id, "unknown" if holder is None else str(holder.owner))

    async def renew(self, room_ids: Collection[str]) -> set[str]:
        """Push back the expiry of this process's leases of ``room_ids`` (one statement).

        Called every third of a lease while rooms are open; returns the rooms whose lease
        this process no longer holds (it expired and another process took it).
        """
        if not room_ids:
            return set()
        table = LEASES_TABLE
        async with self.database.session() as session:
            rows = await session.execute(
                update(table)
                .where((table.c.owner == self.owner) & table.c.room_id.in_(list(room_ids)))
                .values(expires_at=time.time() + self.seconds)
                .returning(table.c.room_id)
            )
            renewed = set(rows.scalars())
        return set(room_ids) - renewed

    async def release(self, room_id: str) -> None:
        """Drop this process's lease of ``room_id`` (the room closed)."""
        table = LEASES_TABLE
        async with self.database.session() as session:
            await session.execute(
                delete(table).where((table.c.room_id == room_id) & (table.c.owner == self.owner))
            )

    async def owner_of(self, room_id: str) -> str | None:
        """The process holding an unexpired lease of ``room_id``, or None."""
        holder = await self._holder(room_id)
        return None if holder is None else str(holder.owner)

    async def _holder(self, room_id: str) -> Any:
        """The unexpired lease row of ``room_id`` (owner, host, pid), or None."""
        table = LEASES_TABLE
        async with self.database.session() as session:
            return (
                await session.execute(
                    select(table.c.owner, table.c.host, table.c.pid).where(
                        (table.c.room_id == room_id) & (table.c.expires_at >= time.time())
                    )
                )
            ).first()
