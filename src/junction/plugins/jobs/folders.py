"""Folders as jobs see them: paths checked against the root, snapshots, change detection.

A job reads a folder over seconds or minutes while people keep working in it. It takes a
:func:`snapshot` first (every entry's size, modification time and inode), checks each file
against it as it reads the file, and compares a second snapshot at the end: any difference
fails the job, so an archive or copy is either consistent or clearly reported as failed.
Symbolic links are skipped (never followed), so nothing outside the root is ever read.

A job's folder is opened when the job is submitted (:func:`open_folder`), judged where it
really is by the request's reach guard (multi-user mode), and then worked on through that
descriptor (``/proc/self/fd/N``): a link re-pointed on the way afterwards changes nothing.
"""

from __future__ import annotations

import errno
import os
import stat
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import IO, Protocol

import anyio

from junction.errors import BadRequest, NotFound
from junction.fdpaths import descriptor_name

__all__ = [
    "CHUNK",
    "MAX_DEPTH",
    "Cancelled",
    "Entry",
    "FolderChanged",
    "Guard",
    "Held",
    "Reporter",
    "TooDeep",
    "Tree",
    "api_parts",
    "check_unchanged",
    "compare",
    "copy_checked",
    "judge_open",
    "open_file",
    "open_folder",
    "reached",
    "real_api_path",
    "snapshot",
]

CHUNK = 1 << 20
"""Bytes read and written at a time: memory stays constant whatever the file sizes."""

MAX_DEPTH = 256
"""The deepest folder tree a job works on: deeper trees fail the job (:class:`TooDeep`)."""


class FolderChanged(Exception):
    """The folder changed while a job read it."""


class Cancelled(Exception):
    """The job was cancelled while it ran."""


class TooDeep(Exception):
    """The folder tree is deeper than :data:`MAX_DEPTH` levels."""


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


class Guard(Protocol):
    """What judges where a job's paths really lead: the request's reach guard (the
    contents plugin's ``REACH_GUARD``), in multi-user mode."""

    def judge(self, real: str, path: str, action: str, *, listing: bool = False) -> None:
        """Refuse ``real`` (a link-free API path) opened for ``path`` unless the user fully
        reaches it for ``action``; raises ``NotFound`` or ``Forbidden``."""
        ...


_FOLDER_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC
_O_PATH: int = getattr(os, "O_PATH", os.O_RDONLY | os.O_NONBLOCK)  # to name it, not read it


@dataclass(frozen=True, slots=True)
class Held:
    """A folder opened and judged for a job: work through :attr:`path`, close :attr:`fd`
    once the job has ended."""

    fd: int
    api: str
    """Its real API path (no link in it) when it was opened."""
    real: Path
    """Its real path when it was opened."""
    path: Path
    """The path to work through: ``/proc/self/fd/N`` names the open folder itself, whatever
    is renamed or re-pointed later (its real path where the system has no ``/proc``)."""


def api_parts(api_path: str) -> tuple[str, ...]:
    """The names of an API path; raises ``BadRequest`` for ``..``, ``.`` or a NUL."""
    parts = PurePosixPath(api_path.strip("/")).parts
    if "\0" in api_path or any(part in ("..", ".") for part in parts):
        raise BadRequest(f"invalid path: {api_path!r}")
    return parts


def _where(fd: int) -> Path | None:
    """The kernel's name of an open descriptor: its real path, no link in it."""
    name = descriptor_name(fd)
    return None if name is None else Path(name)


def judge_open(
    root: Path,
    fd: int,
    api_path: str,
    guard: Guard | None,
    action: str,
    *,
    entry: str | None = None,
    fallback: Path,
) -> Path:
    """The real path of ``fd`` (opened for ``api_path``), refused unless it is under ``root``
    and, with a ``guard`` (multi-user mode), within the user's reach for ``action``;
    ``entry`` names the entry of the directory ``fd`` that is judged instead (one to be
    created). ``fallback`` is the real path where the system cannot name descriptors.

    Raises ``NotFound`` outside the root and the guard's errors (``NotFound``, or
    ``Forbidden`` for a write to what the user may only read).
    """
    real = _where(fd) or Path(os.path.realpath(fallback))
    if real != root and root not in real.parents:
        raise NotFound(f"No such file or directory: {api_path}")
    if guard is not None:
        judged = "" if real == root else real.relative_to(root).as_posix()
        if entry is not None:
            judged = f"{judged}/{entry}" if judged else entry
        guard.judge(judged, api_path.strip("/"), action)
    return real


def open_folder(
    root: Path,
    api_path: str,
    guard: Guard | None = None,
    *,
    action: str = "read",
    entry: str | None = None,
    shown: str | None = None,
) -> Held:
    """Open the folder of an API path under ``root`` and judge it (see :func:`judge_open`);
    refusals name ``shown`` (the path the user asked for), ``api_path`` by default.

    Raises ``BadRequest`` (not a folder, a bad path), ``NotFound`` or the guard's errors.
    Blocking: call it from a worker thread.
    """
    target = root.joinpath(*api_parts(api_path))
    shown = api_path.strip("/") if shown is None else shown
    try:
        fd = os.open(target, _FOLDER_FLAGS)
    except NotADirectoryError:
        # Judged before it is called a file: where the user cannot reach, nothing shows.
        try:
            probe = os.open(target, _O_PATH | os.O_CLOEXEC)
        except OSError:
            raise NotFound(f"No such directory: {shown}") from None
        try:
            judge_open(root, probe, shown, guard, action, fallback=target)
        finally:
            os.close(probe)
        raise BadRequest(f"not a directory: {shown}") from None
    except OSError:
        raise NotFound(f"No such directory: {shown}") from None
    try:
        real = judge_open(root, fd, shown, guard, action, entry=entry, fallback=target)
    except BaseException:
        os.close(fd)
        raise
    api = "" if real == root else real.relative_to(root).as_posix()
    path = Path(f"/proc/self/fd/{fd}") if _where(fd) is not None else real
    return Held(fd, api, real, path)


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
    """Every file and folder below ``folder``, sorted, symbolic links left out.

    Folders are listed through descriptors opened one name at a time without following
    links (see :class:`Tree`), with a stack of its own (no recursion); raises
    :class:`TooDeep` past :data:`MAX_DEPTH` levels, and :class:`FolderChanged` when a
    folder was moved or replaced meanwhile. Folders that cannot be read are left out.
    """
    entries: list[Entry] = []
    top = os.open(folder, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    tree = Tree(top)
    try:
        stack: list[tuple[str, ...]] = [()]
        while stack:
            parts = stack.pop()
            prefix = "".join(f"{part}/" for part in parts)
            try:
                fd = tree.folder(parts)
                with os.scandir(fd) as listing:
                    names = [item.name for item in listing]
            except OSError as exc:
                if exc.errno in _MOVED:
                    raise FolderChanged(f"{prefix.rstrip('/')} was moved or replaced") from None
                continue
            for name in names:
                if not include_hidden and _hidden(name):
                    continue
                try:
                    info = os.stat(name, dir_fd=fd, follow_symlinks=False)
                except FileNotFoundError:
                    raise FolderChanged(f"{prefix}{name} vanished") from None
                is_dir = stat.S_ISDIR(info.st_mode)
                if not (is_dir or stat.S_ISREG(info.st_mode)):
                    continue
                if is_dir:
                    if len(parts) + 1 >= MAX_DEPTH:
                        raise TooDeep(f"the folder tree is deeper than {MAX_DEPTH} levels")
                    stack.append((*parts, name))
                entries.append(
                    Entry(
                        prefix + name,
                        is_dir,
                        0 if is_dir else info.st_size,
                        info.st_mtime_ns,
                        info.st_ino,
                    )
                )
    finally:
        tree.close()
        os.close(top)
    entries.sort(key=lambda entry: entry.name)
    return entries


def reached(entry: Entry) -> None:
    """Called by the zip and copy workers as they reach each entry, before they open it.

    Does nothing: it is the point where tests make a race with the worker certain.
    """


_NOFOLLOW_FOLDER = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC
_NOFOLLOW_FILE = os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC
_MOVED = (errno.ELOOP, errno.ENOENT, errno.ENOTDIR)


class Tree:
    """The folders below an open folder, opened one name at a time relative to their
    parent's descriptor, never through a link (``O_NOFOLLOW``).

    The chain of folders of the last entry stays open, so a walk in sorted order opens
    each folder about once. Close it with :meth:`close` (the top folder is the caller's).
    """

    def __init__(self, fd: int) -> None:
        self._top = fd
        self._chain: list[tuple[str, int]] = []

    def folder(self, parts: Sequence[str]) -> int:
        """The descriptor of the folder ``parts`` (names below the top folder).

        Raises ``OSError`` (``ELOOP``, ``ENOTDIR``, ``ENOENT``) when a name on the way is
        not a folder any more, a link in particular.
        """
        keep = 0  # the folders of the chain that lead to this one stay open
        while keep < min(len(parts), len(self._chain)) and self._chain[keep][0] == parts[keep]:
            keep += 1
        for _, fd in reversed(self._chain[keep:]):
            os.close(fd)
        del self._chain[keep:]
        for name in parts[keep:]:
            parent = self._chain[-1][1] if self._chain else self._top
            self._chain.append((name, os.open(name, _NOFOLLOW_FOLDER, dir_fd=parent)))
        return self._chain[-1][1] if self._chain else self._top

    def close(self) -> None:
        """Close the folders this tree opened."""
        for _, fd in reversed(self._chain):
            os.close(fd)
        self._chain.clear()


def open_file(tree: Tree, entry: Entry) -> int | None:
    """Open the regular file of ``entry`` for reading, through ``tree``'s descriptors.

    Never follows a link and never blocks (``O_NONBLOCK``: a FIFO put in the file's place
    cannot hang the worker). Returns None when it is no longer a regular file (left out,
    as :func:`snapshot` leaves such entries out). Raises :class:`FolderChanged` when the
    file or a folder on its way was moved, removed or replaced by a link.
    """
    *parents, name = entry.name.split("/")
    try:
        fd = os.open(name, _NOFOLLOW_FILE, dir_fd=tree.folder(parents))
    except OSError as exc:
        if exc.errno in _MOVED:
            raise FolderChanged(f"{entry.name} was moved or replaced while it was read") from None
        raise
    if not stat.S_ISREG(os.fstat(fd).st_mode):
        os.close(fd)
        return None
    return fd


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
