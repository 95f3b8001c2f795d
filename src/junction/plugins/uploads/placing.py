"""Destinations: checked when an upload is created, and where a complete one is moved.

A destination is an API path checked like the contents plugin checks a save: no NUL,
backslash, ``.`` or ``..`` segment (nor one of those percent-encoded), no hidden segment
unless ``contents.allow_hidden``; its folder must exist, and the contents service resolves
it (a link leading outside the root is refused). When the upload completes, that folder is
opened and the open descriptor checked again (``/proc/self/fd``: the folder itself, not a
path string another request may have redirected meanwhile), then the partial file is put
in place in one step:

- on the same filesystem, ``link`` (refuses an existing name: no overwrite) or ``rename``
  (replaces one, with ``overwrite``);
- elsewhere, the bytes are first copied into a hidden temporary file in the destination's
  folder and flushed, then linked or renamed the same way.

Partial files are private (0600); a new file gets ``0666`` less the umask when placed, like
a save through the contents service, and a replaced file keeps its mode.

Readers never see a partial file at the destination, and a failure leaves it as it was.
"""

from __future__ import annotations

import errno
import os
import stat
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager, suppress
from pathlib import Path
from urllib.parse import unquote

import anyio.to_thread

from junction.errors import BadRequest, Conflict, HTTPError
from junction.fdpaths import descriptor_name
from junction.plugins.contents.service import (
    REACH_GUARD,
    DiskFull,
    FileNotFound,
    HiddenPathRefused,
    InvalidPath,
    OutsideRoot,
    PermissionDenied,
)
from junction.plugins.uploads.service import DestinationExists

__all__ = ["TEMP_PREFIX", "Destinations", "normalize"]

TEMP_PREFIX = ".~junction-upload-"
"""Names of the copies written beside a destination on another filesystem."""

_BLOCK = 1 << 20
_DIRECTORY = os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC
_STORAGE = frozenset({errno.ENOSPC, errno.EDQUOT, errno.EFBIG})
_REFUSED = frozenset({errno.EACCES, errno.EPERM, errno.EROFS})


def normalize(path: str, *, allow_hidden: bool) -> str:
    """Check the syntax of a destination and return it normalised (no disk access).

    Raises ``InvalidPath`` (400) for NUL, backslash, ``.``/``..`` segments, names encoding
    those, and the root itself; ``HiddenPathRefused`` (400) for hidden segments.
    """
    if "\x00" in path:
        raise InvalidPath("invalid path: NUL bytes are not allowed")
    if "\\" in path:
        raise InvalidPath(f"invalid path {path!r}: backslashes are not allowed")
    parts = [part for part in path.split("/") if part]
    for part in parts:
        decoded = unquote(part)
        if part in (".", "..") or decoded in (".", ".."):
            raise InvalidPath(f"invalid path {path!r}: '.' and '..' segments are not allowed")
        if any(char in decoded for char in ("/", "\\", "\x00")):
            raise InvalidPath(f"invalid path {path!r}: names must not encode '/', '\\' or NUL")
        if not allow_hidden and part.startswith("."):
            raise HiddenPathRefused(f"cannot upload to hidden file or directory {path!r}")
    if not parts:
        raise InvalidPath("an upload needs a file name, not the root directory")
    return "/".join(parts)


class Destinations:
    """Checks destinations and moves complete uploads there.

    ``resolve`` is the contents service's ``os_path``: an API path to its real path inside
    the root, refusing links that lead outside.
    """

    def __init__(
        self, root: str, *, allow_hidden: bool, resolve: Callable[[str], Awaitable[Path]]
    ) -> None:
        self.root = os.path.realpath(root)
        self.allow_hidden = allow_hidden
        self._resolve = resolve
        self._prefix = self.root.rstrip(os.sep) + os.sep
        self.umask = _umask()
        """The process's umask, applied to the mode of a new file."""

    async def check(self, path: str, overwrite: bool) -> str:
        """Check a destination for a new upload; returns its normalised API path."""
        api = normalize(path, allow_hidden=self.allow_hidden)
        folder = await self._folder(api)
        await anyio.to_thread.run_sync(self._check_in, folder, api, overwrite)
        return api

    async def place(self, partial: Path, api: str, overwrite: bool, upload_id: str) -> None:
        """Move the complete file ``partial`` to ``api`` atomically (see the module)."""
        folder = await self._folder(api)
        await anyio.to_thread.run_sync(self._place, partial, folder, api, overwrite, upload_id)

    async def _folder(self, api: str) -> Path:
        return await self._resolve(api.rpartition("/")[0])

    def _check_in(self, folder: Path, api: str, overwrite: bool) -> None:
        with self._open_folder(folder, api) as dir_fd:
            self._existing(dir_fd, api, overwrite)

    @contextmanager
    def _open_folder(self, folder: Path, api: str) -> Iterator[int]:
        """The destination's folder, open, checked to be inside the root and not hidden."""
        try:
            fd = os.open(folder, _DIRECTORY)
        except (FileNotFoundError, NotADirectoryError):
            raise FileNotFound(f"directory {api.rpartition('/')[0]!r} does not exist") from None
        try:
            real = descriptor_name(fd)
            if real is not None and real != self.root:
                if not real.startswith(self._prefix):
                    raise OutsideRoot(f"{api!r} leads outside the root directory through a link")
                inside = real[len(self._prefix) :].split(os.sep)
                if not self.allow_hidden and any(part.startswith(".") for part in inside):
                    raise HiddenPathRefused(f"cannot upload to hidden file or directory {api!r}")
            guard = REACH_GUARD.get()  # multi-user mode: the user must reach where it leads
            if guard is not None and real is not None:
                inner = "" if real == self.root else real[len(self._prefix) :] + os.sep
                entry = (inner + api.rpartition("/")[2]).replace(os.sep, "/")
                guard.judge(entry, api, "write")
            yield fd
        finally:
            os.close(fd)

    @staticmethod
    def _existing(dir_fd: int, api: str, overwrite: bool) -> os.stat_result | None:
        """What the destination's name holds now: None, or a file ``overwrite`` allows."""
        name = api.rpartition("/")[2]
        try:
            info = os.stat(name, dir_fd=dir_fd, follow_symlinks=False)
        except FileNotFoundError:
            return None
        if stat.S_ISDIR(info.st_mode):
            raise Conflict(f"{api!r} is a directory", reason="File Exists")
        if not overwrite:
            raise DestinationExists(api)
        return info

    def _place(
        self, partial: Path, folder: Path, api: str, overwrite: bool, upload_id: str
    ) -> None:
        name = api.rpartition("/")[2]
        with self._open_folder(folder, api) as dir_fd:
            try:
                existing = self._existing(dir_fd, api, overwrite)
                if existing is not None and stat.S_ISREG(existing.st_mode):
                    os.chmod(partial, stat.S_IMODE(existing.st_mode))  # keep the file's mode
                else:  # as a save through the contents service makes a new file
                    os.chmod(partial, 0o666 & ~self.umask)
                if os.stat(partial).st_dev == os.fstat(dir_fd).st_dev:
                    _put(str(partial), None, name, dir_fd, overwrite, api)
                    os.fsync(dir_fd)
                    return
                temp = TEMP_PREFIX + upload_id
                _copy_beside(partial, temp, dir_fd)
                try:
                    _put(temp, dir_fd, name, dir_fd, overwrite, api)
                finally:
                    with suppress(FileNotFoundError):
                        os.unlink(temp, dir_fd=dir_fd)
                os.fsync(dir_fd)
                partial.unlink(missing_ok=True)
            except OSError as exc:
                translated = _translate(exc, api)
                if translated is exc:
                    raise
                raise translated from exc


def _put(
    source: str, source_dir: int | None, name: str, dir_fd: int, overwrite: bool, api: str
) -> None:
    """Give ``source`` the name ``name`` in ``dir_fd`` in one system call."""
    if overwrite:
        os.rename(source, name, src_dir_fd=source_dir, dst_dir_fd=dir_fd)
        return
    try:
        os.link(source, name, src_dir_fd=source_dir, dst_dir_fd=dir_fd, follow_symlinks=False)
    except FileExistsError:
        raise DestinationExists(api) from None
    os.unlink(source, dir_fd=source_dir)


def _copy_beside(partial: Path, temp: str, dir_fd: int) -> None:
    """Copy ``partial`` into a new file ``temp`` of ``dir_fd`` and flush it; constant memory."""
    mode = stat.S_IMODE(os.stat(partial).st_mode)
    out = os.open(temp, os.O_CREAT | os.O_EXCL | os.O_WRONLY | os.O_CLOEXEC, mode, dir_fd=dir_fd)
    try:
        with partial.open("rb") as source:
            size = os.fstat(source.fileno()).st_size
            offset = 0
            while offset < size:
                sent = os.sendfile(out, source.fileno(), offset, min(_BLOCK, size - offset))
                if sent == 0:
                    break
                offset += sent
        os.fsync(out)
    except BaseException:
        os.close(out)
        with suppress(FileNotFoundError):
            os.unlink(temp, dir_fd=dir_fd)
        raise
    os.close(out)


def _umask() -> int:
    """The process's umask, read without changing it (``os.umask`` sets it for every
    thread meanwhile); 0o022 where ``/proc`` cannot tell."""
    try:
        with open("/proc/self/status", encoding="ascii") as status:
            for line in status:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except (OSError, ValueError, IndexError):
        pass
    return 0o022


def _translate(exc: OSError, api: str) -> Exception:
    if isinstance(exc, HTTPError):  # already ours (DiskFull, PermissionDenied are OSErrors)
        return exc
    if exc.errno in _STORAGE:
        return DiskFull(f"no room to write {api!r}: {exc.strerror}")
    if exc.errno in _REFUSED:
        return PermissionDenied(f"permission denied: {api!r}")
    if exc.errno == errno.ENAMETOOLONG:
        return BadRequest(f"the name of {api!r} is too long")
    return exc
