"""Folders as jobs see them: paths checked against the root, snapshots, change detection.

A job reads a folder over seconds or minutes while people keep working in it. It takes a
:func:`snapshot` first (every entry's size, modification time and inode), checks each file
against it as it reads the file, and compares a second snapshot at the end: any difference
fails the job, so an archive or copy is either consistent or clearly reported as failed.
Symbolic links are skipped (never followed), so nothing outside the root is ever read.
"""

from __future__ import annotations

import os
import stat
import threading
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import IO

import anyio

from junction.errors import BadRequest, NotFound

__all__ = [
    "CHUNK",
    "Cancelled",
    "Entry",
    "FolderChanged",
    "Reporter",
    "check_unchanged",
    "compare",
    "copy_checked",
    "real_api_path",
    "resolve",
    "snapshot",
]

CHUNK = 1 << 20
"""Bytes read and written at a time: memory stays constant whatever the file sizes."""


class FolderChanged(Exception):
    """The folder changed while a job read it."""


class Cancelled(Exception):
    """The job was cancelled while it ran."""


class Reporter:
    """What a worker thread shares with the event loop: progress, and the cancel flag."""

    def __init__(self) -> None:
        self.done = 0
        self.total: int | None = None
        self._cancel = threading.Event()
        self._cancelled: anyio.Event | None = None

    def cancel(self) -> None:
        """Ask the worker to stop at its next chunk; called on the event loop."""
        self._cancel.set()
        if self._cancelled is not None:
            self._cancelled.set()

    async def wait_cancelled(self) -> None:
        """Return once the job is cancelled (a worker process is watched this way)."""
        if self._cancelled is None:
            self._cancelled = anyio.Event()
        if not self._cancel.is_set():
            await self._cancelled.wait()

    @property
    def cancelled(self) -> bool:
        """Whether the job was asked to stop."""
        return self._cancel.is_set()

    def check(self) -> None:
        """Raise :class:`Cancelled` if the job was cancelled; called by the worker."""
        if self._cancel.is_set():
            raise Cancelled


def resolve(root: Path, api_path: str) -> Path:
    """The real folder of an API path under ``root``; raises ``BadRequest`` or ``NotFound``."""
    parts = PurePosixPath(api_path.strip("/")).parts
    if "\0" in api_path or any(part in ("..", ".") for part in parts):
        raise BadRequest(f"invalid path: {api_path!r}")
    target = root.joinpath(*parts)
    try:
        real = target.resolve(strict=True)
    except (OSError, RuntimeError):
        raise NotFound(f"No such directory: {api_path}") from None
    if real != root and root not in real.parents:
        raise NotFound(f"No such directory: {api_path}")
    if not real.is_dir():
        raise BadRequest(f"not a directory: {api_path}")
    return real


def real_api_path(root: Path, api_path: str) -> str | None:
    """The API path ``api_path`` really leads to, every link followed (the last name need
    not exist); None when that is outside ``root``."""
    parts = PurePosixPath(api_path.strip("/")).parts
    real = Path(os.path.realpath(root.joinpath(*parts)))
    if real == root:
        return ""
    if root not in real.parents:
        return None
    return real.relative_to(root).as_posix()


@dataclass(frozen=True, slots=True)
class Entry:
    """One file or folder of a snapshot; ``name`` is relative, with ``/`` separators."""

    name: str
    is_dir: bool
    size: int
    mtime_ns: int
    inode: int


def _hidden(name: str) -> bool:
    return name.startswith(".")


def snapshot(folder: Path, *, include_hidden: bool) -> list[Entry]:
    """Every file and folder below ``folder``, sorted, symbolic links left out."""
    entries: list[Entry] = []
    for directory, dirs, files in os.walk(folder, followlinks=False):
        dirs[:] = sorted(d for d in dirs if include_hidden or not _hidden(d))
        base = Path(directory)
        for name in [*dirs, *sorted(files)]:
            if not include_hidden and _hidden(name):
                continue
            path = base / name
            try:
                info = path.lstat()
            except FileNotFoundError:
                raise FolderChanged(f"{path.relative_to(folder)} vanished") from None
            if not (stat.S_ISDIR(info.st_mode) or stat.S_ISREG(info.st_mode)):
                continue
            entries.append(
                Entry(
                    path.relative_to(folder).as_posix(),
                    stat.S_ISDIR(info.st_mode),
                    0 if stat.S_ISDIR(info.st_mode) else info.st_size,
                    info.st_mtime_ns,
                    info.st_ino,
                )
            )
    entries.sort(key=lambda entry: entry.name)
    return entries


def check_unchanged(entry: Entry, info: os.stat_result) -> None:
    """Raise :class:`FolderChanged` when an open file no longer matches its snapshot entry.

    Workers call it when they open a file, after each chunk (an ``fstat``, about a
    microsecond per megabyte) and at the end, so a change stops the job early.
    """
    if info.st_nlink == 0:
        raise FolderChanged(f"{entry.name} was removed while it was read")
    if (info.st_size, info.st_mtime_ns, info.st_ino) != (entry.size, entry.mtime_ns, entry.inode):
        raise FolderChanged(f"{entry.name} changed while it was read")


def copy_checked(source: IO[bytes], sink: IO[bytes], entry: Entry, reporter: Reporter) -> None:
    """Copy the open file ``source`` (of snapshot ``entry``) into ``sink`` chunk by chunk.

    Counts progress, honours cancellation and checks the file against ``entry`` after each
    chunk and at the end; raises :class:`FolderChanged` when it changed or ended early.
    """
    fd = source.fileno()
    copied = 0
    while chunk := source.read(CHUNK):
        sink.write(chunk)
        copied += len(chunk)
        reporter.done += len(chunk)
        reporter.check()
        check_unchanged(entry, os.fstat(fd))
    check_unchanged(entry, os.fstat(fd))
    if copied != entry.size:
        raise FolderChanged(f"{entry.name} changed while it was read")


def compare(before: list[Entry], after: list[Entry]) -> None:
    """Raise :class:`FolderChanged` naming the first entry that differs between snapshots."""
    if before == after:
        return
    old = {entry.name: entry for entry in before}
    new = {entry.name: entry for entry in after}
    for name in sorted(old.keys() | new.keys()):
        if name not in new:
            raise FolderChanged(f"{name} was removed while the folder was read")
        if name not in old:
            raise FolderChanged(f"{name} was added while the folder was read")
        if old[name] != new[name] and not old[name].is_dir:
            raise FolderChanged(f"{name} changed while the folder was read")
