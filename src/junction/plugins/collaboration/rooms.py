"""``Rooms``: the open rooms of one server, the file ids, and the contents observer.

A room is built once, under a per-room lock, the first time a client connects, and stays
open ``document_cleanup_delay`` seconds after its last client left (a reconnect within the
delay finds it as it was); then it saves what is unsaved and closes. Implements
:class:`~junction.plugins.collaboration.service.CollaborationService`.

With several servers on one database, a room opens only on the server holding its lease
(see ``leases.py``): another server refuses it with ``RoomOwnedElsewhere``. One task
renews every lease of the open rooms; a room whose lease was lost (this process stalled
past the lease and another server took it) disconnects its clients and closes unsaved.

In multi-user mode a room is loaded as its first joiner's request (whose reach was just
checked); after that, what it opens is judged against everyone in it (``reach.py``), and its
own tasks never run as the user whose request happened to start them.
"""

from __future__ import annotations

import json
import logging
import uuid
from typing import TYPE_CHECKING

import anyio
import anyio.abc

from junction.plugins.collaboration.document import DocumentRoom, room_kind
from junction.plugins.collaboration.leases import Leases
from junction.plugins.collaboration.reach import RoomGuard
from junction.plugins.collaboration.room import Room
from junction.plugins.collaboration.service import GLOBAL_AWARENESS, RoomNotFound
from junction.plugins.collaboration.settings import CollaborationSettings
from junction.plugins.collaboration.store import DatabaseStore
from junction.plugins.contents.service import (
    REACH_GUARD,
    ContentsAccess,
    ContentsChange,
    ContentsService,
)

if TYPE_CHECKING:
    from junction.plugins.collaboration.execution import ServerExecutor

__all__ = ["Rooms"]

log = logging.getLogger("junction.collaboration")

OWNED_ELSEWHERE = 4503
"""WebSocket close code of a room another server owns (the reason is JSON, see routes.py)."""


def owned_elsewhere_reason(owner: str) -> str:
    """The JSON close reason of :data:`OWNED_ELSEWHERE`: which ``sessionId`` owns the room."""
    return json.dumps({"reason": "owned_elsewhere", "owner": owner})


class Rooms:
    """Every open room, by id (see the module docstring)."""

    def __init__(
        self,
        settings: CollaborationSettings,
        store: DatabaseStore,
        contents: ContentsService,
        task_group: anyio.abc.TaskGroup,
        access: ContentsAccess | None = None,
    ) -> None:
        self.settings = settings
        self.access = access
        """Per-user reach in multi-user mode (None: single-user mode, nothing is judged)."""
        self.store = store
        self.contents = contents
        self._session_id = str(uuid.uuid4())
        self.leases = Leases(store.database, self._session_id, seconds=settings.room_lease_seconds)
        self._renewing = False
        self._group = task_group
        self.rooms: dict[str, DocumentRoom] = {}
        self._scopes: dict[str, anyio.CancelScope] = {}
        self._locks: dict[str, anyio.Lock] = {}
        self._empty_since: dict[str, int] = {}
        self._generation = 0
        self.global_rooms: dict[str, Room] = {}
        """The global awareness room of each user (see :meth:`get`)."""
        self.executor: ServerExecutor | None = None
        """Runs cells on the server when the kernels plugin is there (set at startup)."""

    @property
    def session_id(self) -> str:
        """This process's session id."""
        return self._session_id

    async def index(self, path: str) -> tuple[str, bool]:
        """See ``CollaborationService.index``."""
        await self.contents.get(path, content=False)
        record, created = await self.store.index(path)
        return record.id, created

    async def path_of(self, file_id: str) -> str | None:
        """See ``CollaborationService.path_of``."""
        record = await self.store.by_id(file_id)
        return None if record is None else record.path

    async def get(self, room_id: str, *, user: str = "") -> Room:
        """The open room ``room_id``, loading it first if needed; raises RoomNotFound.

        The global awareness room (presence, open documents) is one per ``user``: in
        multi-user mode a user sees only their own connections there, never which files
        other users have open.
        """
        if room_id == GLOBAL_AWARENESS:
            room = self.global_rooms.get(user)
            if room is None:
                room = self.global_rooms[user] = Room(GLOBAL_AWARENESS)
                room.on_empty = lambda empty: self._global_empty(user, empty)
            return room
        format, _, rest = room_id.partition(":")
        type, _, file_id = rest.partition(":")
        kind = room_kind(format, type)
        if kind is None or not file_id:
            raise RoomNotFound(f"no such room: {room_id!r}")
        lock = self._locks.setdefault(room_id, anyio.Lock())
        async with lock:
            room = self.rooms.get(room_id)
            if room is not None and not room.closed:
                self._empty_since.pop(room_id, None)
                return room
            if room is not None:  # its file went away: start over
                await self._close(room)
            record = await self.store.by_id(file_id)
            if record is None:
                raise RoomNotFound(f"no file has id {file_id!r}")
            await self.leases.take(room_id)  # raises RoomOwnedElsewhere
            room = DocumentRoom(
                room_id,
                record,
                format=format,
                type=type,
                contents=self.contents,
                store=self.store,
                settings=self.settings,
            )
            if self.access is not None:
                room.guard = RoomGuard(room, self.access, opener=REACH_GUARD.get())
            try:
                await room.load()
            except BaseException:
                with anyio.CancelScope(shield=True):
                    await self.leases.release(room_id)
                raise
            room.on_empty = self._room_empty
            self.rooms[room_id] = room
            scope = anyio.CancelScope()
            self._scopes[room_id] = scope
            self._group.start_soon(self._run, room, scope)
            if not self._renewing:
                self._renewing = True
                self._group.start_soon(self._renew_leases)
            return room

    async def _run(self, room: DocumentRoom, scope: anyio.CancelScope) -> None:
        REACH_GUARD.set(room.guard)  # this task's own context: not its first joiner's guard
        with scope:
            try:
                await room.run()
            except Exception:
                log.exception("room %s stopped saving and watching its file", room.id)

    def _global_empty(self, user: str, room: Room) -> None:
        if self.global_rooms.get(user) is room:
            del self.global_rooms[user]

    async def _renew_leases(self) -> None:
        """Renew the leases of the open rooms every third of a lease, until cancelled."""
        while True:
            await anyio.sleep(self.settings.room_lease_seconds / 3)
            rooms = dict(self.rooms)
            try:
                lost = await self.leases.renew(rooms)
            except Exception:
                log.exception("could not renew the room leases")
                continue
            for room_id in lost:
                room = rooms[room_id]
                if self.rooms.get(room_id) is room and not room.closed:
                    self._group.start_soon(self._lost, room)

    async def _lost(self, room: DocumentRoom) -> None:
        REACH_GUARD.set(room.guard)
        room.path = None  # the new owner saves the file now
        try:
            owner = await self.leases.owner_of(room.id) or "unknown"
        except Exception:
            owner = "unknown"
        log.error("room %s: another server (%s) took it over; closing it unsaved", room.id, owner)
        room.close_all(OWNED_ELSEWHERE, owned_elsewhere_reason(owner))
        try:
            async with self._locks.setdefault(room.id, anyio.Lock()):
                if self.rooms.get(room.id) is room:
                    await self._close(room)
        except Exception:
            log.exception("room %s: closing failed", room.id)

    def _room_empty(self, room: Room) -> None:
        if not isinstance(room, DocumentRoom):
            return
        self._generation += 1
        self._empty_since[room.id] = self._generation
        self._group.start_soon(self._cleanup_later, room, self._generation)

    async def _cleanup_later(self, room: DocumentRoom, generation: int) -> None:
        REACH_GUARD.set(room.guard)  # not the last leaver's guard
        await anyio.sleep(self.settings.document_cleanup_delay)
        if self._empty_since.get(room.id) != generation or room.clients or room.runs:
            return
        try:
            async with self._locks.setdefault(room.id, anyio.Lock()):
                await self._close(room)
        except Exception:
            log.exception("room %s: closing failed", room.id)

    async def _close(self, room: DocumentRoom) -> None:
        self._empty_since.pop(room.id, None)
        try:
            await room.close()
        finally:
            scope = self._scopes.pop(room.id, None)
            if scope is not None:
                scope.cancel()
            if self.rooms.get(room.id) is room:
                del self.rooms[room.id]
            try:
                with anyio.CancelScope(shield=True):
                    await self.leases.release(room.id)
            except Exception:  # it expires on its own
                log.exception("room %s: could not release its lease", room.id)

    def rooms_of(self, file_id: str) -> list[DocumentRoom]:
        """The open rooms of a file (one per format and type it was opened as)."""
        return [room for room in self.rooms.values() if room.file_id == file_id]

    async def on_contents_change(self, change: ContentsChange) -> None:
        """Keep file ids and rooms on their files as the contents service changes them."""
        if change.kind == "renamed" and change.new_path is not None:
            for file_id, path in await self.store.moved(change.path, change.new_path):
                for room in self.rooms_of(file_id):
                    room.file_moved(path)
        elif change.kind == "deleted":
            for file_id in await self.store.deleted(change.path):
                for room in self.rooms_of(file_id):
                    room.file_deleted()
                    await self._close(room)
                    await self.store.forget(room.id)
        elif change.kind == "saved":
            record = await self.store.by_path(change.path)
            if record is not None:
                for room in self.rooms_of(record.id):
                    if not room.saving:
                        room.poke()

    async def aclose(self) -> None:
        """Save and close every room (the server is stopping)."""
        for room in list(self.rooms.values()):
            try:
                with anyio.CancelScope(shield=True):
                    await self._close(room)
            except Exception:
                log.exception("room %s: could not save at shutdown", room.id)
            room.close_all(1001, "server stopping")
        for global_room in list(self.global_rooms.values()):
            global_room.close_all(1001, "server stopping")
