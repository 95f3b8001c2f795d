""":class:`TableUploads`: uploads recorded in ``uploads_uploads``, bytes in partial files.

An append streams the request body to the partial file through a worker thread, a
megabyte at a time (memory stays constant whatever the upload's size), then cuts the file
to the bytes it keeps, flushes them (``fsync``) and only then records the new offset. So
whenever a connection drops, at any byte, the recorded offset names bytes that are on
disk, and the client continues from there. Appends to one upload are serialised by a lock
of this process, and across processes sharing the directory by the partial file's ``flock``
(held from before the offset is read until the new one is recorded).
"""

from __future__ import annotations

import errno
import logging
import secrets
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field, replace

import anyio
import anyio.to_thread
from sqlalchemy import Row, delete, insert, select, update

from junction.database import Database
from junction.plugins.contents.service import DiskFull
from junction.plugins.uploads.models import NewUpload, Upload
from junction.plugins.uploads.partials import PartialFiles, PartialWriter
from junction.plugins.uploads.placing import Destinations
from junction.plugins.uploads.service import (
    Checksum,
    ChecksumMismatch,
    OffsetMismatch,
    UploadLocked,
    UploadNotFound,
    UploadQuotaReached,
    UploadTooLarge,
)
from junction.plugins.uploads.tables import UPLOADS_TABLE

__all__ = ["BLOCK", "TableUploads"]

log = logging.getLogger("junction.uploads")

BLOCK = 1 << 20
"""Bytes gathered from the request before one write to the partial file."""

_STORAGE_ERRNOS = frozenset({errno.ENOSPC, errno.EDQUOT, errno.EFBIG})
_T = UPLOADS_TABLE.c


@dataclass
class _Lock:
    """The lock of one upload, and how many requests hold or wait for it."""

    lock: anyio.Lock = field(default_factory=anyio.Lock)
    users: int = 0


class TableUploads:
    """Implements :class:`~junction.plugins.uploads.service.UploadService`."""

    def __init__(
        self,
        database: Database,
        *,
        partials: PartialFiles,
        destinations: Destinations,
        max_size: int,
        max_uploads_per_user: int | None,
        max_bytes_per_user: int | None,
        expire_after: float,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._database = database
        self._partials = partials
        self._destinations = destinations
        self._max_size = max_size
        self._max_uploads = max_uploads_per_user
        self._max_bytes = max_bytes_per_user
        self._expire_after = expire_after
        self._clock = clock
        self._creating = anyio.Lock()
        self._locks: dict[str, _Lock] = {}

    @property
    def max_size(self) -> int:
        """See ``UploadService.max_size``."""
        return self._max_size

    def busy(self) -> int:
        """Uploads receiving bytes right now (for metrics)."""
        return sum(1 for entry in self._locks.values() if entry.lock.locked())

    async def check_destination(self, destination: str, overwrite: bool) -> str:
        """See ``UploadService.check_destination``."""
        return await self._destinations.check(destination, overwrite)

    async def create(self, request: NewUpload, owner: str) -> Upload:
        """See ``UploadService.create``."""
        if request.length > self._max_size:
            raise UploadTooLarge(
                f"Upload-Length {request.length} is above the largest upload allowed, "
                f"{self._max_size} bytes (uploads.max_size)"
            )
        destination = await self.check_destination(request.destination, request.overwrite)
        upload_id = secrets.token_hex(16)
        now = self._clock()
        upload = Upload(
            id=upload_id,
            owner=owner,
            destination=destination,
            length=request.length,
            offset=0,
            overwrite=request.overwrite,
            metadata=request.metadata,
            created=now,
            expires=now + self._expire_after,
        )
        async with self._creating:  # one check-then-insert at a time in this process
            await self._check_quota(owner, request.length, now)
            await anyio.to_thread.run_sync(self._partials.create, upload_id)
            try:
                async with self._database.session() as session:
                    await session.execute(
                        insert(UPLOADS_TABLE).values(
                            id=upload.id,
                            owner=owner,
                            destination=destination,
                            length=upload.length,
                            offset=0,
                            overwrite=upload.overwrite,
                            metadata=upload.metadata,
                            created=now,
                            expires=upload.expires,
                            completed=None,
                        )
                    )
            except BaseException:
                await anyio.to_thread.run_sync(self._partials.remove, upload_id)
                raise
        log.info("upload %s of %d bytes to %s created", upload_id, upload.length, destination)
        if upload.length == 0:  # complete at once: in place, or not at all
            async with self._locked(upload_id):
                try:
                    upload = await self._settle(upload, None, 0)
                except BaseException:
                    with anyio.CancelScope(shield=True):
                        await self._forget([upload_id])
                    raise
        return upload

    async def _check_quota(self, owner: str, length: int, now: float) -> None:
        unfinished = (_T.owner == owner) & _T.completed.is_(None) & (_T.expires > now)
        async with self._database.session() as session:
            lengths = [
                row.length for row in await session.execute(select(_T.length).where(unfinished))
            ]
        if self._max_uploads is not None and len(lengths) >= self._max_uploads:
            raise UploadQuotaReached(
                f"Resource Limit: {owner} has {len(lengths)} unfinished uploads, the most "
                "allowed (uploads.max_uploads_per_user); finish or terminate one first"
            )
        if self._max_bytes is not None and sum(lengths) + length > self._max_bytes:
            raise UploadQuotaReached(
                f"Resource Limit: {owner}'s unfinished uploads would hold "
                f"{sum(lengths) + length} bytes, more than allowed "
                f"({self._max_bytes} bytes, uploads.max_bytes_per_user)"
            )

    async def get(self, upload_id: str, owner: str) -> Upload:
        """See ``UploadService.get``."""
        async with self._database.session() as session:
            row = (await session.execute(select(UPLOADS_TABLE).where(_T.id == upload_id))).first()
        if row is None or row.owner != owner or row.expires <= self._clock():
            raise UploadNotFound(upload_id)
        return _model(row)

    async def append(
        self,
        upload_id: str,
        owner: str,
        offset: int,
        body: AsyncIterator[bytes],
        *,
        declared: int | None = None,
        checksum: Checksum | None = None,
    ) -> Upload:
        """See ``UploadService.append``."""
        async with self._locked(upload_id):
            upload = self._check_append(await self.get(upload_id, owner), offset, declared)
            if upload.is_complete:
                return upload
            writer = await self._open(upload)
            try:
                # Again under the file's lock: another process may have appended meanwhile.
                upload = self._check_append(await self.get(upload_id, owner), offset, declared)
                await self._seek(writer, upload)
            except BaseException:
                await anyio.to_thread.run_sync(writer.close)
                raise
            try:
                await self._receive(writer, body, upload, checksum)
            except BaseException as exc:
                keep = not isinstance(exc, (UploadTooLarge, ChecksumMismatch))
                end = writer.position if keep else upload.offset
                with anyio.CancelScope(shield=True):
                    await self._settle(upload, writer, end)
                if isinstance(exc, OSError) and exc.errno in _STORAGE_ERRNOS:
                    raise DiskFull(f"no room for upload {upload_id}: {exc.strerror}") from exc
                raise
            with anyio.CancelScope(shield=True):  # a cancelled request still records its bytes
                settled = await self._settle(upload, writer, writer.position)
            return settled  # noqa: RET504  # after the block: the scope could swallow errors

    @staticmethod
    def _check_append(upload: Upload, offset: int, declared: int | None) -> Upload:
        if offset != upload.offset:
            raise OffsetMismatch(upload.offset, offset)
        if declared is not None and declared > upload.length - upload.offset:
            raise UploadTooLarge(
                f"{declared} bytes at offset {offset} go past Upload-Length {upload.length}"
            )
        return upload

    async def _open(self, upload: Upload) -> PartialWriter:
        try:
            return await anyio.to_thread.run_sync(self._partials.open, upload.id)
        except FileNotFoundError:
            # Deleted, or written by another server whose directory this one does not share;
            # the record goes when it expires.
            log.warning("upload %s has no partial file in %s", upload.id, self._partials.directory)
            raise UploadNotFound(upload.id) from None
        except BlockingIOError:
            raise UploadLocked(upload.id) from None

    async def _seek(self, writer: PartialWriter, upload: Upload) -> None:
        size = await anyio.to_thread.run_sync(writer.seek, upload.offset)
        if size < upload.offset:  # bytes lost in a crash: the client continues from what is left
            log.warning("upload %s holds %d bytes, not %d", upload.id, size, upload.offset)
            async with self._database.session() as session:
                await session.execute(
                    update(UPLOADS_TABLE).where(_T.id == upload.id).values(offset=size)
                )
            raise OffsetMismatch(size, upload.offset)

    async def _receive(
        self,
        writer: PartialWriter,
        body: AsyncIterator[bytes],
        upload: Upload,
        checksum: Checksum | None,
    ) -> None:
        """Write ``body`` through ``writer``; raises UploadTooLarge past the length and
        ChecksumMismatch at the end. A body that ends early is not an error."""
        room = upload.length - upload.offset
        buffer = bytearray()
        received = 0
        async for chunk in body:
            received += len(chunk)
            if received > room:
                raise UploadTooLarge(
                    f"the body goes past Upload-Length {upload.length}; none of it was kept"
                )
            buffer += chunk
            if len(buffer) >= BLOCK:
                await anyio.to_thread.run_sync(writer.write, buffer, checksum)
                buffer.clear()
        if buffer:
            await anyio.to_thread.run_sync(writer.write, buffer, checksum)
        if checksum is not None and not checksum.matches():
            raise ChecksumMismatch(
                f"the {received} bytes received do not match Upload-Checksum; none were kept"
            )

    async def _settle(self, upload: Upload, writer: PartialWriter | None, end: int) -> Upload:
        """Keep ``end`` bytes on disk, move a complete file into place, record the offset;
        the file stays locked until the record is written."""
        try:
            if writer is not None:
                await anyio.to_thread.run_sync(writer.flush, end)
            completed: float | None = None
            if end == upload.length:
                try:
                    await self._destinations.place(
                        self._partials.path(upload.id),
                        upload.destination,
                        upload.overwrite,
                        upload.id,
                    )
                except BaseException:
                    # Never record a complete upload whose file is not in place.
                    if writer is not None:
                        await anyio.to_thread.run_sync(writer.flush, upload.offset)
                    raise
                completed = self._clock()
                log.info("upload %s complete at %s", upload.id, upload.destination)
            if end == upload.offset and completed is None:
                return upload
            expires = self._clock() + self._expire_after
            async with self._database.session() as session:
                await session.execute(
                    update(UPLOADS_TABLE)
                    .where(_T.id == upload.id)
                    .values(offset=end, expires=expires, completed=completed)
                )
            return replace(upload, offset=end, expires=expires, completed=completed)
        finally:
            if writer is not None:
                await anyio.to_thread.run_sync(writer.close)

    async def terminate(self, upload_id: str, owner: str) -> None:
        """See ``UploadService.terminate``."""
        async with self._locked(upload_id):
            await self.get(upload_id, owner)
            await self._forget([upload_id])
        log.info("upload %s terminated", upload_id)

    async def expire(self, now: float | None = None) -> int:
        """See ``UploadService.expire``."""
        now = self._clock() if now is None else now
        async with self._database.session() as session:
            rows = (await session.execute(select(_T.id, _T.expires))).all()
        expired = [row.id for row in rows if row.expires <= now and row.id not in self._locks]
        if expired:
            await self._forget(expired)
            log.info("%d expired uploads deleted", len(expired))
        known = {row.id for row in rows}
        orphans = await anyio.to_thread.run_sync(
            self._partials.orphans, known, now - self._expire_after
        )
        for upload_id in orphans:
            await anyio.to_thread.run_sync(self._partials.remove, upload_id)
        return len(expired)

    async def _forget(self, ids: list[str]) -> None:
        async with self._database.session() as session:
            await session.execute(delete(UPLOADS_TABLE).where(_T.id.in_(ids)))
        for upload_id in ids:
            await anyio.to_thread.run_sync(self._partials.remove, upload_id)

    @asynccontextmanager
    async def _locked(self, upload_id: str) -> AsyncIterator[None]:
        entry = self._locks.setdefault(upload_id, _Lock())
        entry.users += 1
        try:
            async with entry.lock:
                yield
        finally:
            entry.users -= 1
            if not entry.users:
                del self._locks[upload_id]


def _model(row: Row[tuple[object, ...]]) -> Upload:
    return Upload(
        id=row.id,
        owner=row.owner,
        destination=row.destination,
        length=row.length,
        offset=row.offset,
        overwrite=bool(row.overwrite),
        metadata=row.metadata,
        created=row.created,
        expires=row.expires,
        completed=row.completed,
    )
