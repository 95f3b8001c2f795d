"""Chunked uploads: ``PUT`` with ``chunk`` 1, 2, ..., -1, written without holding the file.

Each upload writes into an :class:`~junction.plugins.contents.atomic.AtomicFile` (an
anonymous file in the target's directory) that lives across requests. Chunk 1 starts the
upload over (discarding one in progress for the same path), chunk ``n`` must follow chunk
``n - 1``, and chunk -1 appends the last piece and puts the file in place atomically. Until
then the target keeps its previous content, and an abandoned upload disappears: it is
discarded after ``upload_idle_timeout`` seconds without a chunk, at shutdown, or with the
process (the anonymous file has no name to leave behind).

Only one chunk per path is handled at a time (the service holds the path's lock), and
this registry is only touched from the event loop, never from worker threads.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

from junction.plugins.contents.atomic import AtomicFile

__all__ = ["Upload", "Uploads"]


@dataclass
class Upload:
    """One upload in progress: its file, the chunk expected next, whether the target is new."""

    file: AtomicFile
    created: bool
    mode: int | None
    next_chunk: int = 2
    touched: float = field(default_factory=time.monotonic)


class Uploads:
    """Uploads in progress, keyed by the target's filesystem path."""

    def __init__(self, idle_timeout: float) -> None:
        self.idle_timeout = idle_timeout
        self._active: dict[str, Upload] = {}

    def __len__(self) -> int:
        return len(self._active)

    def start(self, key: str, upload: Upload) -> None:
        """Register a new upload for ``key``, discarding one already in progress."""
        self.discard(key)
        self._active[key] = upload

    def get(self, key: str) -> Upload | None:
        """The upload in progress for ``key``, if any."""
        return self._active.get(key)

    def finish(self, key: str) -> None:
        """Forget a completed upload (its file was committed)."""
        self._active.pop(key, None)

    def discard(self, key: str) -> None:
        """Abandon the upload for ``key``: its bytes are dropped, the target is untouched."""
        upload = self._active.pop(key, None)
        if upload is not None:
            upload.file.discard()

    def expired(self, now: float | None = None) -> list[str]:
        """Keys of uploads idle for longer than the timeout."""
        now = time.monotonic() if now is None else now
        return [
            key
            for key, upload in list(self._active.items())
            if now - upload.touched > self.idle_timeout
        ]

    def close(self) -> None:
        """Discard every upload (at shutdown)."""
        for key in list(self._active):
            self.discard(key)
