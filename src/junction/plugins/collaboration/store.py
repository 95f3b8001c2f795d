"""``DatabaseStore``: file ids and room updates in the shared database.

File ids are uuid4 strings bound to an API path; renames through Junction move the path
(a directory moves every path below it), deletes drop the id (a file created later at the
same path gets a new one). Updates are appended one row each and merged into a single
checkpoint row every ``checkpoint_every`` rows, in one transaction, so a reader always sees
either the rows or their merge.
"""

from __future__ import annotations

import time
import uuid
from dataclasses import dataclass

from sqlalchemy import delete, func, insert, select, update

from junction.database import Database
from junction.plugins.collaboration.tables import FILES_TABLE, UPDATES_TABLE

__all__ = ["DatabaseStore", "FileRecord"]


@dataclass(frozen=True, slots=True)
class FileRecord:
    """A file known to collaboration: its id, path, and how its room last left it."""

    id: str
    path: str
    synced_hash: str | None
    dirty: bool


def _escape_like(text: str) -> str:
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


class DatabaseStore:
    """File ids and Yjs updates of rooms, in ``collaboration_files``/``_updates``."""

    def __init__(self, database: Database, *, checkpoint_every: int) -> None:
        self.database = database
        self.checkpoint_every = checkpoint_every
        self._counts: dict[str, int] = {}

    # -- file ids ---------------------------------------------------------------------------

    async def index(self, path: str) -> tuple[FileRecord, bool]:
        """The record of ``path``, made if new; the flag says whether it was made now."""
        record = await self.by_path(path)
        if record is not None:
            return record, False
        file_id = str(uuid.uuid4())
        async with self.database.session() as session:
            await session.execute(
                insert(FILES_TABLE).values(id=file_id, path=path, synced_hash=None, dirty=False)
            )
        return FileRecord(file_id, path, None, False), True

    async def by_path(self, path: str) -> FileRecord | None:
        """The record of ``path``, or None."""
        async with self.database.session() as session:
            row = (
                await session.execute(select(FILES_TABLE).where(FILES_TABLE.c.path == path))
            ).first()
        return None if row is None else FileRecord(row.id, row.path, row.synced_hash, row.dirty)

    async def by_id(self, file_id: str) -> FileRecord | None:
        """The record of ``file_id``, or None."""
        async with self.database.session() as session:
            row = (
                await session.execute(select(FILES_TABLE).where(FILES_TABLE.c.id == file_id))
            ).first()
        return None if row is None else FileRecord(row.id, row.path, row.synced_hash, row.dirty)

    async def mark(self, file_id: str, *, synced_hash: str | None, dirty: bool) -> None:
        """Record the hash the room last synced with the disk, and whether it has edits."""
        async with self.database.session() as session:
            await session.execute(
                update(FILES_TABLE)
                .where(FILES_TABLE.c.id == file_id)
                .values(synced_hash=synced_hash, dirty=dirty)
            )

    async def moved(self, old: str, new: str) -> list[tuple[str, str]]:
        """Move ``old`` (and, for a directory, every path below it) to ``new``.

        Returns ``(file id, new path)`` for each id moved.
        """
        prefix = _escape_like(old + "/") + "%"
        async with self.database.session() as session:
            rows = (
                await session.execute(
                    select(FILES_TABLE.c.id, FILES_TABLE.c.path).where(
                        (FILES_TABLE.c.path == old) | FILES_TABLE.c.path.like(prefix, escape="\\")
                    )
                )
            ).all()
            moved = [(row.id, new + row.path[len(old) :]) for row in rows]
            targets = [path for _, path in moved]
            if targets:  # whatever was indexed at the targets is gone now
                await session.execute(delete(FILES_TABLE).where(FILES_TABLE.c.path.in_(targets)))
            for file_id, path in moved:
                await session.execute(
                    update(FILES_TABLE).where(FILES_TABLE.c.id == file_id).values(path=path)
                )
        return moved

    async def deleted(self, path: str) -> list[str]:
        """Forget ``path`` and every path below it; returns the ids dropped."""
        prefix = _escape_like(path + "/") + "%"
        condition = (FILES_TABLE.c.path == path) | FILES_TABLE.c.path.like(prefix, escape="\\")
        async with self.database.session() as session:
            ids = list((await session.execute(select(FILES_TABLE.c.id).where(condition))).scalars())
            await session.execute(delete(FILES_TABLE).where(condition))
        return ids

    # -- updates ----------------------------------------------------------------------------

    async def append(self, room: str, updates: list[bytes]) -> None:
        """Store ``updates`` of ``room`` (one transaction); merge them every so often."""
        if not updates:
            return
        now = time.time()
        async with self.database.session() as session:
            await session.execute(
                insert(UPDATES_TABLE), [{"room": room, "data": u, "created": now} for u in updates]
            )
        count = self._counts.get(room, 0) + len(updates)
        self._counts[room] = count
        if count >= self.checkpoint_every:
            await self.compact(room)

    async def load(self, room: str) -> list[bytes]:
        """Every stored update of ``room``, oldest first."""
        async with self.database.session() as session:
            rows = (
                await session.execute(
                    select(UPDATES_TABLE.c.data)
                    .where(UPDATES_TABLE.c.room == room)
                    .order_by(UPDATES_TABLE.c.seq)
                )
            ).scalars()
            updates = list(rows)
        self._counts[room] = len(updates)
        return updates

    async def compact(self, room: str) -> None:
        """Replace every stored update of ``room`` by their merge (one row)."""
        async with self.database.session() as session:
            rows = (
                await session.execute(
                    select(UPDATES_TABLE.c.seq, UPDATES_TABLE.c.data)
                    .where(UPDATES_TABLE.c.room == room)
                    .order_by(UPDATES_TABLE.c.seq)
                )
            ).all()
            if len(rows) > 1:
                from pycrdt import merge_updates  # pycrdt loads with the first room, not at startup

                merged = merge_updates(*[row.data for row in rows])
                last = rows[-1].seq
                await session.execute(
                    delete(UPDATES_TABLE).where(
                        (UPDATES_TABLE.c.room == room) & (UPDATES_TABLE.c.seq < last)
                    )
                )
                await session.execute(
                    update(UPDATES_TABLE).where(UPDATES_TABLE.c.seq == last).values(data=merged)
                )
        self._counts[room] = 1

    async def forget(self, room: str) -> None:
        """Drop every stored update of ``room`` (its file was deleted)."""
        async with self.database.session() as session:
            await session.execute(delete(UPDATES_TABLE).where(UPDATES_TABLE.c.room == room))
        self._counts.pop(room, None)

    async def count(self, room: str) -> int:
        """How many update rows ``room`` has (tests and the bench read it)."""
        async with self.database.session() as session:
            value = await session.execute(
                select(func.count()).select_from(UPDATES_TABLE).where(UPDATES_TABLE.c.room == room)
            )
            return int(value.scalar_one())
