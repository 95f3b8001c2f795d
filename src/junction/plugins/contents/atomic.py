"""Atomic file writes: a file is replaced whole or not at all.

:class:`AtomicFile` writes into an anonymous file (Linux ``O_TMPFILE``) in the destination's
directory, flushes it to disk, gives it a temporary name and renames it over the
destination. Until the last step the destination is untouched; if the process dies before,
the anonymous file simply vanishes, so no temporary, backup or empty files are left
behind (only a crash between the link and the rename, two system calls, could leave one
``.~junction-*`` file). Where ``O_TMPFILE`` is missing, a named hidden temporary file is
used and removed on failure.

A short write followed by ``ENOSPC`` is what a full disk looks like; every such error
aborts the write and leaves the destination as it was. ``write_block`` is the one place
bytes reach the disk: tests replace it on the service to inject those errors (see
``LocalContents.write_block``).

:class:`PathLocks` serialises writers of one path inside the process.
"""

from __future__ import annotations

import ctypes
import errno
import functools
import os
import secrets
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager, suppress
from dataclasses import dataclass, field

import anyio

__all__ = [
    "BLOCK",
    "STORAGE_ERRNOS",
    "AtomicFile",
    "PathLocks",
    "WriteBlock",
    "copy_into",
    "rename_noreplace",
]

WriteBlock = Callable[[int, memoryview], int]
"""Writes some bytes of a buffer to a file descriptor and returns how many (``os.write``)."""

STORAGE_ERRNOS = frozenset({errno.ENOSPC, errno.EDQUOT, errno.EFBIG})
"""Errors meaning 'no room': disk full, quota exceeded, file size limit."""

BLOCK = 1 << 20
"""Bytes moved per read or write when copying."""

TEMP_PREFIX = ".~junction-"
_NO_TMPFILE = frozenset({errno.EOPNOTSUPP, errno.EISDIR, errno.EINVAL, errno.ENOENT})


class AtomicFile:
    """A file being written next to its destination, invisible until committed.

    ``dir_fd`` is the open destination directory (already checked by the caller); the file
    keeps its own duplicate of it, so everything happens in that very directory whatever
    is renamed meanwhile. Use as a context manager: leaving it without :meth:`commit` (or
    by an exception) discards everything written.
    """

    def __init__(
        self, dir_fd: int, *, write_block: WriteBlock = os.write, durable: bool = True
    ) -> None:
        self.write_block = write_block
        self.durable = durable
        self.size = 0
        self._dir_fd = os.dup(dir_fd)
        self._temp_name: str | None = None
        try:
            self.fd = os.open(".", os.O_TMPFILE | os.O_RDWR, 0o666, dir_fd=self._dir_fd)
        except (OSError, AttributeError) as exc:
            if isinstance(exc, OSError) and exc.errno not in _NO_TMPFILE:
                os.close(self._dir_fd)
                raise
            self._temp_name = TEMP_PREFIX + secrets.token_hex(8)
            try:
                self.fd = os.open(
                    self._temp_name,
                    os.O_CREAT | os.O_EXCL | os.O_RDWR,
                    0o666,
                    dir_fd=self._dir_fd,
                )
            except OSError:
                os.close(self._dir_fd)
                raise
        self._closed = False
        if self._temp_name is None and not os.path.exists(f"/proc/self/fd/{self.fd}"):
            self.discard()  # O_TMPFILE without /proc cannot be linked: use a named file
            raise OSError(errno.EOPNOTSUPP, "no /proc/self/fd to link anonymous files")

    def __enter__(self) -> AtomicFile:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.discard()

    def write(self, data: bytes | memoryview) -> None:
        """Append ``data``, retrying short writes; raises OSError (ENOSPC...) as it comes."""
        view = memoryview(data)
        while view:
            written = self.write_block(self.fd, view)
            self.size += written
            view = view[written:]

    def truncate(self) -> None:
        """Drop everything written so far."""
        os.ftruncate(self.fd, 0)
        os.lseek(self.fd, 0, os.SEEK_SET)
        self.size = 0

    def commit(
        self, name: str, *, mode: int | None = None, exclusive: bool = False
    ) -> os.stat_result:
        """Put the file in place as ``name`` in the directory; returns its ``stat``.

        ``mode`` sets permission bits (keep an overwritten file's mode). ``exclusive``
        refuses to replace an existing file (FileExistsError) instead of replacing it.
        """
        if mode is not None:
            os.fchmod(self.fd, mode)
        if self.durable:
            os.fsync(self.fd)
        if self._temp_name is None:
            source = f"/proc/self/fd/{self.fd}"
            if exclusive:
                os.link(source, name, dst_dir_fd=self._dir_fd)
            else:
                temp = TEMP_PREFIX + secrets.token_hex(8)
                os.link(source, temp, dst_dir_fd=self._dir_fd)
                try:
                    os.replace(temp, name, src_dir_fd=self._dir_fd, dst_dir_fd=self._dir_fd)
                except OSError:
                    os.unlink(temp, dir_fd=self._dir_fd)
                    raise
        elif exclusive:
            os.link(self._temp_name, name, src_dir_fd=self._dir_fd, dst_dir_fd=self._dir_fd)
            os.unlink(self._temp_name, dir_fd=self._dir_fd)
            self._temp_name = None
        else:
            os.replace(self._temp_name, name, src_dir_fd=self._dir_fd, dst_dir_fd=self._dir_fd)
            self._temp_name = None
        if self.durable:
            try:
                os.fsync(self._dir_fd)
            except OSError as exc:  # some filesystems cannot sync directories; the data is
                if exc.errno not in (errno.EINVAL, errno.EBADF):  # safe, only the name is
                    raise  # not yet durable
        committed = os.fstat(self.fd)
        self.discard()
        return committed

    def discard(self) -> None:
        """Close and forget the file (idempotent); the destination is untouched."""
        if self._closed:
            return
        self._closed = True
        os.close(self.fd)
        if self._temp_name is not None:
            with suppress(FileNotFoundError):
                os.unlink(self._temp_name, dir_fd=self._dir_fd)
        os.close(self._dir_fd)


def copy_into(target: AtomicFile, source_fd: int, block: int = BLOCK) -> None:
    """Append everything readable from ``source_fd`` to ``target``, one block at a time."""
    while chunk := os.read(source_fd, block):
        target.write(chunk)


_RENAME_NOREPLACE = 1
_AT_FDCWD = -100


@functools.cache
def _load_renameat2() -> Callable[..., int] | None:
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        function: Callable[..., int] = libc.renameat2
    except (OSError, AttributeError):  # not glibc >= 2.28, or not Linux
        return None
    return function


def rename_noreplace(
    source: str,
    target: str,
    *,
    src_dir_fd: int | None = None,
    dst_dir_fd: int | None = None,
) -> None:
    """Rename ``source`` to ``target`` unless ``target`` exists (FileExistsError).

    Names are relative to ``src_dir_fd`` and ``dst_dir_fd`` when given, as in
    ``os.rename``. Uses ``renameat2(RENAME_NOREPLACE)`` where the C library and filesystem
    have it, so no other process can slip a file in between the check and the rename;
    elsewhere it checks first.
    """
    renameat2 = _load_renameat2()
    if renameat2 is not None:
        result = renameat2(
            _AT_FDCWD if src_dir_fd is None else src_dir_fd,
            os.fsencode(source),
            _AT_FDCWD if dst_dir_fd is None else dst_dir_fd,
            os.fsencode(target),
            _RENAME_NOREPLACE,
        )
        if result == 0:
            return
        code = ctypes.get_errno()
        if code not in (errno.ENOSYS, errno.EINVAL, errno.ENOTSUP):
            raise OSError(code, os.strerror(code))
    try:
        os.stat(target, dir_fd=dst_dir_fd, follow_symlinks=False)
    except FileNotFoundError:
        os.rename(source, target, src_dir_fd=src_dir_fd, dst_dir_fd=dst_dir_fd)
    else:
        raise FileExistsError(errno.EEXIST, os.strerror(errno.EEXIST))


@dataclass
class _Entry:
    lock: anyio.Lock = field(default_factory=anyio.Lock)
    users: int = 0


class PathLocks:
    """One async lock per filesystem path, created on demand and dropped when unused."""

    def __init__(self) -> None:
        self._locks: dict[str, _Entry] = {}

    @asynccontextmanager
    async def hold(self, *keys: str) -> AsyncIterator[None]:
        """Hold the locks of ``keys`` (in sorted order, so two holders cannot deadlock)."""
        ordered = sorted(set(keys))
        entries = []
        for key in ordered:
            entry = self._locks.setdefault(key, _Entry())
            entry.users += 1
            entries.append((key, entry))
        acquired: list[_Entry] = []
        try:
            for _, entry in entries:
                await entry.lock.acquire()
                acquired.append(entry)
            yield
        finally:
            for entry in reversed(acquired):
                entry.lock.release()
            for key, entry in entries:
                entry.users -= 1
                if entry.users == 0:
                    del self._locks[key]

    def busy(self, key: str) -> bool:
        """Whether someone holds or waits for the lock of ``key``."""
        return key in self._locks

    def holders(self, key: str) -> int:
        """How many hold or wait for the lock of ``key`` (tests wait for a queued request)."""
        entry = self._locks.get(key)
        return 0 if entry is None else entry.users
