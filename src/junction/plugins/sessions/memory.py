"""A session store in process memory: sessions are forgotten when the server stops.

That matches what kernels do (they stop with the server), so nothing outlives its kernel.
"""

from __future__ import annotations

from junction.plugins.sessions.service import SessionRecord

__all__ = ["MemorySessionStore"]


class MemorySessionStore:
    """A :class:`~junction.plugins.sessions.service.SessionStore` backed by a dict.

    Dicts keep insertion order, so :meth:`list` is oldest first. Nothing here awaits, so each
    method is atomic on the event loop.
    """

    def __init__(self) -> None:
        self._records: dict[str, SessionRecord] = {}

    async def add(self, record: SessionRecord) -> None:
        """Keep a new record."""
        self._records[record.id] = record

    async def get(self, session_id: str) -> SessionRecord | None:
        """Return the record with this id, or None."""
        return self._records.get(session_id)

    async def find(self, *, path: str) -> SessionRecord | None:
        """Return the record for a document path, or None."""
        for record in self._records.values():
            if record.path == path:
                return record
        return None

    async def with_kernel(self, kernel_id: str) -> list[SessionRecord]:
        """Return the records of every session using this kernel."""
        return [record for record in self._records.values() if record.kernel_id == kernel_id]

    async def replace(self, record: SessionRecord) -> None:
        """Overwrite the record with ``record.id``, if it is still kept."""
        if record.id in self._records:
            self._records[record.id] = record

    async def remove(self, session_id: str) -> None:
        """Forget a record, if kept."""
        self._records.pop(session_id, None)

    # Defined last: below it, in this class, ``list`` would name the method, not the type.
    async def list(self) -> list[SessionRecord]:
        """Return every record, oldest first."""
        return list(self._records.values())
