"""The uploads contract: :class:`UploadService` (key :data:`UPLOADS`) and its errors.

A resumable upload is created with its length and destination, receives its bytes in any
number of appends (each continuing exactly where the previous one ended, so a client that
lost its connection asks for the offset and goes on from there), and is moved into place
at its destination when the last byte arrives. Its record lives in the database; its bytes
wait in a partial file until then. An upload untouched for ``uploads.expire_after``
seconds is deleted.

Errors, mapped to HTTP by the core::

    UploadNotFound (NotFound)          404  unknown, expired, terminated, or another user's
    OffsetMismatch (Conflict)          409  an append that does not start at the offset
    DestinationExists (Conflict)       409  the destination exists (without ``overwrite``)
    UploadTooLarge (PayloadTooLarge)   413  above Tus-Max-Size, or past the declared length
    UploadQuotaReached (Forbidden)     403  the user's uploads or bytes in flight are used up
    UploadLocked (HTTPError)           423  another server process appends to it right now
    ChecksumMismatch (HTTPError)       460  the bytes of an append do not match its checksum
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Protocol

from junction.errors import Conflict, Forbidden, HTTPError, NotFound, PayloadTooLarge
from junction.plugin import ServiceKey
from junction.plugins.uploads.models import NewUpload, Upload

__all__ = [
    "UPLOADS",
    "Checksum",
    "ChecksumMismatch",
    "DestinationExists",
    "OffsetMismatch",
    "UploadLocked",
    "UploadNotFound",
    "UploadQuotaReached",
    "UploadService",
    "UploadTooLarge",
]


class UploadNotFound(NotFound):
    """No upload has this id for this user: never created, expired or terminated."""

    def __init__(self, upload_id: str) -> None:
        super().__init__(f"No such upload: {upload_id}")


class OffsetMismatch(Conflict):
    """An append starts elsewhere than at the bytes received so far."""

    def __init__(self, expected: int, given: int) -> None:
        super().__init__(
            f"Upload-Offset {given} does not match the bytes received so far ({expected}); "
            "ask with HEAD and continue from there",
            reason="Offset Mismatch",
        )


class DestinationExists(Conflict):
    """The destination exists and the upload does not ask to overwrite it."""

    def __init__(self, path: str) -> None:
        super().__init__(
            f"{path!r} exists; add 'overwrite' to Upload-Metadata to replace it",
            reason="File Exists",
        )


class UploadTooLarge(PayloadTooLarge):
    """The upload is larger than allowed, or an append goes past its declared length."""


class UploadQuotaReached(Forbidden):
    """The user has as many unfinished uploads, or bytes in flight, as allowed."""

    default_reason = "Resource Limit"


class ChecksumMismatch(HTTPError):
    """The bytes of an append do not match its ``Upload-Checksum``; none of them were kept.

    460 is the status the tus checksum extension defines.
    """

    status_code = 460
    default_reason = "Checksum Mismatch"


class UploadLocked(HTTPError):
    """Another server process sharing the partial files appends to this upload right now;
    tus clients retry after a while (423 Locked)."""

    status_code = 423
    default_reason = "Locked"

    def __init__(self, upload_id: str) -> None:
        super().__init__(f"Upload {upload_id} is receiving bytes in another request; retry")


class Checksum(Protocol):
    """An ``Upload-Checksum`` being computed over the bytes of one append."""

    def update(self, data: bytes | memoryview) -> None:
        """Add bytes; called from a worker thread, in order."""
        ...

    def matches(self) -> bool:
        """Whether the bytes added so far have the expected digest."""
        ...


class UploadService(Protocol):
    """Create, append to, read and terminate resumable uploads.

    ``owner`` is the user a request comes from; another user's upload looks missing
    (:class:`UploadNotFound`). Every method may raise ``DatabaseUnavailable``.
    """

    @property
    def max_size(self) -> int:
        """The largest upload allowed, in bytes (``Tus-Max-Size``)."""
        ...

    async def check_destination(self, destination: str, overwrite: bool) -> str:
        """Check a destination before anything is written; returns its normalised API path.

        Raises ``InvalidPath`` or ``HiddenPathRefused`` (400), ``OutsideRoot`` (403),
        ``FileNotFound`` (its folder does not exist), :class:`DestinationExists`.
        """
        ...

    async def create(self, request: NewUpload, owner: str) -> Upload:
        """Record a new upload and create its empty partial file; called for ``POST``.

        An upload of length 0 is complete at once. Raises the errors of
        :meth:`check_destination`, :class:`UploadTooLarge`, :class:`UploadQuotaReached`.
        """
        ...

    async def get(self, upload_id: str, owner: str) -> Upload:
        """The upload now; called for ``HEAD``. Raises :class:`UploadNotFound`."""
        ...

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
        """Write ``body`` at ``offset`` and return the upload after it; called for ``PATCH``.

        ``declared`` is the body's ``Content-Length`` when known. Bytes reach the disk as
        they arrive (memory stays constant) and are flushed with ``fsync`` before the new
        offset is recorded; a body that ends early (the client went away) keeps what
        arrived, unless a ``checksum`` was given, which must match all of it. The append
        that brings the offset to the length moves the file into place. Appends to one
        upload run one at a time. Raises :class:`UploadNotFound`, :class:`OffsetMismatch`,
        :class:`UploadTooLarge`, :class:`ChecksumMismatch`, :class:`DestinationExists`
        (the destination appeared meanwhile: this append's bytes are dropped, so the
        upload never looks complete while its file is not in place),
        ``InsufficientStorage``.
        """
        ...

    async def terminate(self, upload_id: str, owner: str) -> None:
        """Delete the upload's record and partial file; called for ``DELETE``. Raises
        :class:`UploadNotFound`."""
        ...

    async def expire(self, now: float | None = None) -> int:
        """Delete uploads whose ``expires`` is before ``now`` (default: the current time),
        and partial files no record names; returns how many uploads. Called periodically."""
        ...


UPLOADS: ServiceKey[UploadService] = ServiceKey("uploads")
