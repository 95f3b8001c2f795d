"""Partial files: where an upload's bytes wait until the last one arrives.

Each upload has one file, ``<id>.part``, in a private directory (mode 0700, so the files
themselves take the usual mode of new files and become readable as such once in place).
:class:`PartialWriter` appends to it from a worker thread and, at the end of every append,
cuts it to the bytes to keep and flushes them with ``fsync``: only then is the new offset
recorded, so the recorded offset never counts a byte the disk may not have. The file stays
locked (``flock``) from before the offset is read until after the new one is recorded, so
processes sharing the directory never append to one upload at once.
"""

from __future__ import annotations

import fcntl
import os
from pathlib import Path

from junction.plugins.uploads.service import Checksum

__all__ = ["SUFFIX", "PartialFiles", "PartialWriter"]

SUFFIX = ".part"


class PartialWriter:
    """One append in progress: a partial file, open and locked (``flock``) against appends
    from other processes sharing the directory, positioned at the upload's offset.

    Used from worker threads, one call at a time; :meth:`close` always runs last.
    """

    def __init__(self, fd: int) -> None:
        self.fd = fd
        self.position = 0
        """The offset after the last byte written (all of it accepted by ``os.write``)."""

    def seek(self, offset: int) -> int:
        """Position the file at ``offset``, dropping bytes past it (written by an append
        whose end was never recorded); returns the file's size when it holds fewer bytes
        than ``offset`` (lost in a crash), else ``offset``."""
        size = os.fstat(self.fd).st_size
        if size < offset:
            return size
        if size > offset:
            os.ftruncate(self.fd, offset)
        os.lseek(self.fd, offset, os.SEEK_SET)
        self.position = offset
        return offset

    def write(self, data: bytearray, checksum: Checksum | None) -> None:
        """Append ``data`` (retrying short writes) and feed it to ``checksum``; raises
        OSError (ENOSPC...) as it comes, ``position`` counting what was written."""
        view = memoryview(data)
        try:
            if checksum is not None:
                checksum.update(view)
            while view:
                written = os.write(self.fd, view)
                self.position += written
                view = view[written:]
        finally:
            view.release()

    def flush(self, end: int) -> None:
        """Keep the first ``end`` bytes and flush them to disk."""
        if self.position != end:
            os.ftruncate(self.fd, end)
            self.position = end
        os.fsync(self.fd)

    def close(self) -> None:
        """Close the file, which releases its lock."""
        os.close(self.fd)


class PartialFiles:
    """The private directory of partial files."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory

    def prepare(self) -> None:
        """Create the directory (0700) if needed and make sure others cannot enter it."""
        self.directory.mkdir(mode=0o700, parents=True, exist_ok=True)
        os.chmod(self.directory, 0o700)

    def path(self, upload_id: str) -> Path:
        """The partial file of an upload."""
        return self.directory / f"{upload_id}{SUFFIX}"

    def create(self, upload_id: str) -> None:
        """Create an upload's empty partial file; raises FileExistsError if it exists."""
        self.directory.mkdir(mode=0o700, parents=True, exist_ok=True)
        flags = os.O_CREAT | os.O_EXCL | os.O_WRONLY | os.O_CLOEXEC
        fd = os.open(self.path(upload_id), flags, 0o600)  # its mode is set when it is placed
        os.close(fd)

    def open(self, upload_id: str) -> PartialWriter:
        """Open and lock an upload's partial file to append to it. Raises
        FileNotFoundError when the file is not here, BlockingIOError when another process
        appends to it now."""
        fd = os.open(self.path(upload_id), os.O_WRONLY | os.O_CLOEXEC)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BaseException:
            os.close(fd)
            raise
        return PartialWriter(fd)

    def remove(self, upload_id: str) -> None:
        """Delete an upload's partial file, if it is still there."""
        self.path(upload_id).unlink(missing_ok=True)

    def orphans(self, known: set[str], older_than: float) -> list[str]:
        """Ids of partial files no record names, untouched since ``older_than`` (Unix
        time): left by a crash between creating the file and recording the upload."""
        found = []
        try:
            entries = list(os.scandir(self.directory))
        except FileNotFoundError:
            return []
        for entry in entries:
            upload_id = entry.name.removesuffix(SUFFIX)
            if upload_id == entry.name or upload_id in known:
                continue
            try:
                if entry.stat(follow_symlinks=False).st_mtime < older_than:
                    found.append(upload_id)
            except FileNotFoundError:
                continue
        return found
