"""``DocumentRoom``: a room bound to a file, kept in the database, saved to the disk.

Loading (under the room's lock, once per room):

- no stored updates: the document is built from the file in a ``Doc(client_id=0)`` and
  merged in, so two servers (or one after losing its store) build identical Yjs items from
  identical content and a client's old history merges without duplicating cells;
- stored updates: they are applied, and the file is never applied over them when it still
  is what the room last synced with (the store then holds edits not yet saved, e.g. after
  the server was killed: they are kept and saved). When the file changed meanwhile (an edit
  outside Junction while the room was closed), the outside change rule below applies.

Every update is in ``collaboration_updates`` before any client sees it.

Saving: ``document_save_delay`` after the last change (at the latest ten delays after the
first unsaved one), or at once on a client's RAW ``save``; through the contents service
(atomic). A save whose content equals what the file holds writes nothing.

Outside changes (polled every ``file_poll_interval``, and at once when the contents service
reports a save made by someone else): with no unsaved edits in the room the file wins and
is merged into the room (cells diffed by id); with unsaved edits, the file's version is
written next to it as ``name (conflict YYYY-MM-DD HHMMSS).ext`` and the room's version is
kept and saved: nothing is silently lost.
"""

from __future__ import annotations

import base64
import logging
import posixpath
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import anyio

from junction.errors import HTTPError
from junction.plugins.collaboration.room import Room
from junction.plugins.collaboration.settings import CollaborationSettings
from junction.plugins.collaboration.store import DatabaseStore, FileRecord
from junction.plugins.contents.models import SaveRequest
from junction.plugins.contents.service import REACH_GUARD, ContentsService, FileNotFound

if TYPE_CHECKING:
    from jupyter_ydoc.ybasedoc import YBaseDoc
    from pycrdt import Doc

    from junction.plugins.collaboration.reach import RoomGuard
    from junction.plugins.collaboration.room import Client

__all__ = ["DocumentRoom", "conflict_path", "room_kind"]

log = logging.getLogger("junction.collaboration")

FORMATS = {"notebook": "json", "file": "text", "unicode": "text", "blob": "base64"}
"""The contents format each document type is read and saved in."""


def room_kind(format: str, type: str) -> tuple[str, str] | None:
    """``(format, type)`` when a room can hold such a document, else None."""
    # jupyter_ydoc and pycrdt (2 MB) load with the first document, not at startup.
    from jupyter_ydoc import ydocs

    if type in ydocs and FORMATS.get(type) == format:
        return format, type
    return None


def conflict_path(path: str, moment: datetime) -> str:
    """Where the disk's version goes when it conflicts with a room's unsaved edits."""
    directory, name = posixpath.split(path)
    stem, dot, ext = name.rpartition(".")
    if not dot or not stem:
        stem, ext = name, ""
    stamp = moment.strftime("%Y-%m-%d %H%M%S")
    new = f"{stem} (conflict {stamp})" + (f".{ext}" if ext else "")
    return posixpath.join(directory, new) if directory else new


class DocumentRoom(Room):
    """A room whose document is a file under the root (see the module docstring)."""

    def __init__(
        self,
        room_id: str,
        record: FileRecord,
        *,
        format: str,
        type: str,
        contents: ContentsService,
        store: DatabaseStore,
        settings: CollaborationSettings,
    ) -> None:
        super().__init__(room_id)
        self.file_id = record.id
        self.path: str | None = record.path
        self.format = format
        self.type = type
        self.contents = contents
        self.store = store
        self.settings = settings
        from jupyter_ydoc import ydocs

        self.ydoc: YBaseDoc = ydocs[type](self.doc)
        self.dirty = False
        self.synced_hash = record.synced_hash
        self.last_modified: str | None = None
        self._record = record
        self._synced: Any = None
        self._version = 0
        self._first_unsaved: float | None = None
        self._lock = anyio.Lock()
        self._changed = anyio.Event()
        self._poke = anyio.Event()
        self._saving = False
        self._dirty_unstored = False
        self.runs = 0
        self.closed = False
        self.guard: RoomGuard | None = None
        """Judges what the room opens (multi-user mode only; see ``reach.py``)."""

    @contextmanager
    def judged(self) -> Iterator[None]:
        """Judge what the contents service opens meanwhile by :attr:`guard` (when there is
        one), whoever's task or request this runs in; see ``reach.py``."""
        if self.guard is None:
            yield
            return
        token = REACH_GUARD.set(self.guard)
        try:
            yield
        finally:
            REACH_GUARD.reset(token)

    # -- content ----------------------------------------------------------------------------

    def _from_model(self, model: dict[str, Any]) -> Any:
        content = model["content"]
        if self.type == "blob":
            return base64.b64decode(content)
        if isinstance(content, str):
            return content.replace("\r\n", "\n")
        return content

    def _to_request(self, content: Any) -> SaveRequest:
        if self.type == "blob":
            content = base64.b64encode(content).decode()
        save_type = "notebook" if self.type == "notebook" else "file"
        return SaveRequest(type=save_type, format=self.format, content=content)

    def _normalize(self, content: Any) -> Any:
        """What ``content`` reads as once in a document (compare documents with files)."""
        from jupyter_ydoc import ydocs
        from pycrdt import Doc

        empty: Doc[Any] = Doc(client_id=0)
        doc = ydocs[self.type](empty)
        doc.set(content)
        return doc.get()

    async def _read(self, path: str) -> dict[str, Any]:
        model_type = "notebook" if self.type == "notebook" else "file"
        return await self.contents.get(path, type=model_type, format=self.format, hash=True)

    # -- loading ----------------------------------------------------------------------------

    async def load(self) -> None:
        """Build the document from the store and the file (see the module docstring)."""
        with self.judged():
            await self._load()

    async def _load(self) -> None:
        from jupyter_ydoc import ydocs
        from pycrdt import Doc

        assert self.path is not None
        model = await self._read(self.path)
        disk = self._from_model(model)
        updates = await self.store.load(self.id)
        if updates and self.guard is not None and model.get("hash") != self._record.synced_hash:
            # Multi-user mode: the file is not the one the stored history was last in step
            # with (changed outside, or another file now lies at this path), and that history
            # may hold what the people opening it now may not read: start from the file.
            log.info("room %s: not the file its history knew; starting afresh", self.id)
            await self.store.forget(self.id)
            updates = []
        if not updates:
            seed: Doc[Any] = Doc(client_id=0)
            ydocs[self.type](seed).set(disk)
            initial = seed.get_update()
            self.doc.apply_update(initial)
            await self.store.append(self.id, [initial])
            self._synced = self.ydoc.get()
            self._disk_synced(model)
            await self.store.mark(self.file_id, synced_hash=self.synced_hash, dirty=False)
            self.observe()
            return
        for update in updates:
            self.doc.apply_update(update)
        self.observe()
        current = self.ydoc.get()
        disk_normal = self._normalize(disk)
        if current == disk_normal:
            self._synced = current
            self._disk_synced(model)
            if self._record.dirty:
                await self.store.mark(self.file_id, synced_hash=self.synced_hash, dirty=False)
        elif model.get("hash") == self._record.synced_hash:
            # The file is as the room left it: the store holds edits never saved.
            self._synced = disk_normal
            self._disk_synced(model)
            self._mark_changed()
        else:
            self.dirty = self._record.dirty
            await self._outside_change(model, disk, disk_normal)
        await self.flush()

    def _disk_synced(self, model: dict[str, Any]) -> None:
        self.synced_hash = model.get("hash")
        self.last_modified = model.get("last_modified")

    # -- changes ----------------------------------------------------------------------------

    async def persist(self, updates: list[bytes]) -> None:
        """Append the updates to the room's rows in the database.

        The first change after a save also marks the file dirty there, so a restart after a
        crash tells the room's unsaved edits from an edit made outside meanwhile.
        """
        await self.store.append(self.id, updates)
        if self._dirty_unstored:
            self._dirty_unstored = False
            await self.store.mark(self.file_id, synced_hash=self.synced_hash, dirty=True)

    def changed(self, *, by_client: bool) -> None:
        """A client (or the server) changed the document: schedule a save."""
        self._mark_changed()

    def _mark_changed(self) -> None:
        self._version += 1
        if not self.dirty:
            self.dirty = True
            self._dirty_unstored = True
            self._first_unsaved = time.monotonic()
        self._changed.set()

    def hold(self) -> None:
        """Keep the room open with no client (a cell runs on the server and writes into it)."""
        self.runs += 1

    def release(self) -> None:
        """A run that held the room ended; the cleanup delay starts when nobody is left."""
        self.runs -= 1
        if self.runs == 0 and not self.clients and self.on_empty is not None:
            self.on_empty(self)

    def poke(self) -> None:
        """Look at the file now (someone else saved it through Junction)."""
        self._poke.set()

    async def run(self) -> None:
        """Save after changes and watch the file, until the room closes (cancelled)."""
        async with anyio.create_task_group() as group:
            group.start_soon(self._save_loop)
            group.start_soon(self._poll_loop)

    async def _save_loop(self) -> None:
        delay = self.settings.document_save_delay
        while True:
            await self._changed.wait()
            while True:
                self._changed = anyio.Event()
                first = self._first_unsaved or time.monotonic()
                left = max(0.0, first + 10 * max(delay, 0.1) - time.monotonic())
                with anyio.move_on_after(min(delay, left)) as scope:
                    await self._changed.wait()
                if scope.cancelled_caught or left <= 0:
                    break
            if self.dirty:
                await self.save()

    async def _poll_loop(self) -> None:
        while True:
            with anyio.move_on_after(self.settings.file_poll_interval):
                await self._poke.wait()
            self._poke = anyio.Event()
            try:
                await self.check_disk()
            except HTTPError as exc:
                log.warning("room %s: cannot check %r: %s", self.id, self.path, exc)

    async def check_disk(self) -> None:
        """Compare the file with what the room last synced; merge or keep a conflict copy.

        A file gone, or out of the reach of someone in the room (a link re-pointed), is
        never read into the room: the room closes as for a deleted file.
        """
        with self.judged():
            async with self._lock:
                await self._check_disk_locked()

    async def _check_disk_locked(self) -> None:
        if self.path is None or self.closed:
            return
        try:
            model = await self.contents.get(self.path, content=False)
            if model.get("last_modified") == self.last_modified:
                return
            full = await self._read(self.path)
        except FileNotFound:
            log.warning("room %s: %r is gone or out of reach; closing the room", self.id, self.path)
            self.file_deleted()
            return
        if full.get("hash") == self.synced_hash:
            self.last_modified = full.get("last_modified")
            return
        disk = self._from_model(full)
        if await self._outside_change(full, disk, self._normalize(disk)):
            await self._save_locked()  # the file gets the room's version back at once
        await self.flush()

    async def _outside_change(self, model: dict[str, Any], disk: Any, disk_normal: Any) -> bool:
        """Merge an outside change, or keep it as a conflict copy (then True)."""
        current = self.ydoc.get()
        if current == disk_normal:
            self._synced = current
        elif not self.dirty:
            log.info("room %s: %r changed on disk, loading it", self.id, self.path)
            self.ydoc.set(disk)
            self._synced = self.ydoc.get()
        else:
            assert self.path is not None
            copy = conflict_path(self.path, datetime.now(UTC))
            log.warning(
                "room %s: %r changed on disk while the room had unsaved edits; the disk's "
                "version is kept as %r",
                self.id,
                self.path,
                copy,
            )
            await self.contents.save(copy, self._to_request(disk))
            self._synced = disk_normal
            self._disk_synced(model)
            await self.store.mark(self.file_id, synced_hash=self.synced_hash, dirty=True)
            self._mark_changed()
            return True
        self._disk_synced(model)
        self.dirty = False
        await self.store.mark(self.file_id, synced_hash=self.synced_hash, dirty=False)
        return False

    # -- saving -----------------------------------------------------------------------------

    async def save_now(self) -> str:
        """A client asked to save (RAW ``save``)."""
        return await self.save()

    async def save(self) -> str:
        """Write the document to its file if it differs; ``success``, ``skipped``, ``failed``."""
        if self.path is None:
            return "failed"
        try:
            await self.check_disk()
            with self.judged():
                async with self._lock:
                    return await self._save_locked()
        except HTTPError as exc:
            log.warning("room %s: saving %r failed: %s", self.id, self.path, exc)
            return "failed"

    async def _save_locked(self) -> str:
        if self.path is None or self.closed:
            return "failed"
        version = self._version
        content = self.ydoc.get()
        if content == self._synced:
            self.dirty = self._version != version
            await self.store.mark(self.file_id, synced_hash=self.synced_hash, dirty=self.dirty)
            return "skipped"
        self._saving = True
        try:
            await self.contents.save(self.path, self._to_request(content))
        finally:
            self._saving = False
        model = await self.contents.get(self.path, content=False, hash=True)
        self._synced = content
        self._disk_synced(model)
        self.dirty = self._version != version
        if not self.dirty:
            self._first_unsaved = None
        await self.store.mark(self.file_id, synced_hash=self.synced_hash, dirty=self.dirty)
        with self.doc.transaction():
            if model.get("hash"):
                self.ydoc.hash = model["hash"]
            self.ydoc.dirty = False
        await self.flush()
        return "success"

    @property
    def saving(self) -> bool:
        """Whether the room is writing its file right now (its own save, not an outside one)."""
        return self._saving

    # -- the file moving --------------------------------------------------------------------

    def file_moved(self, new_path: str) -> None:
        """The file was renamed through Junction: follow it. A closed room stays closed; in
        multi-user mode a room whose file was reached through a link closes (4404), since
        where the link leads from its new place is not the file the room read."""
        if self.closed or self.path is None:
            return
        old, self.path = self.path, new_path
        if self.guard is not None and not self.guard.moved(old, new_path):
            log.warning("room %s: its file, reached through a link, was moved; closing", self.id)
            self.file_deleted()

    async def admit(self, client: Client) -> bool:
        """Join ``client`` unless it may not read the file the room read (multi-user mode);
        waits for a poll or save under way to end first (multi-user mode only)."""
        if self.guard is None:
            self.join(client)
            return True
        async with self._lock:
            if not self.guard.admits(client.user):
                log.warning("room %s: a user who does not reach its file was kept out", self.id)
                return False
            self.join(client)
            return True

    def file_deleted(self) -> None:
        """The file is gone: its clients are disconnected (4404), the room stops saving."""
        self.path = None
        self.closed = True
        self.close_all(4404, "file deleted")

    async def close(self) -> None:
        """Save what is unsaved and stop (the last client left long enough ago)."""
        if self.dirty and self.path is not None:
            await self.save()
        self.closed = True
        self.dispose()
