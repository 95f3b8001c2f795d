"""The contents contract: the service routes and other plugins call, its key, its errors.

Paths are *API paths*: relative to the server's ``root_dir``, ``/``-separated, no leading
slash ('' is the root). Every method checks its paths (no ``..``, no NUL or backslash, no
link leading outside the root, hidden names per ``allow_hidden``) before touching the disk.

Errors, all mapped to HTTP by the core::

    InvalidPath (BadRequest)          400  malformed path: '..', NUL, backslash
    HiddenPathRefused (BadRequest)    400  writing a hidden path while allow_hidden is off
    BadType / BadFormat (BadRequest)  400  reasons "bad type" / "bad format", as Jupyter
    InvalidContent (BadRequest)       400  body that cannot be saved (bad base64, wrong shape)
    InvalidNotebook (BadRequest)      400  notebook failing nbformat validation
    InvalidCursor (BadRequest)        400  a directory-order page cursor that is malformed
    DirectoryNotEmpty (BadRequest)    400  deleting a non-empty directory without permission
    UploadOutOfOrder (BadRequest)     400  chunk n without chunks 1..n-1
    FileTooLarge (BadRequest)         400  whole-file read above max_read_mb, copy too big
    TrashFailed (BadRequest)          400  the trash refused; nothing was deleted
    OperationRefused (BadRequest)     400  EINVAL, EIO: the file cannot be read (or written)
    OutsideRoot (Forbidden)           403  a link leading outside the root
    PermissionDenied (Forbidden)      403  the OS refused
    FileNotFound (NotFound)           404  missing (or hidden, on read)
    CheckpointNotFound (NotFound)     404
    FileExists (Conflict)             409  rename onto an existing path
    DiskFull (InsufficientStorage)    507  ENOSPC, EDQUOT, EFBIG: nothing was changed

Messages name API paths only, never the server's absolute paths.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Awaitable, Callable
from contextvars import ContextVar
from dataclasses import dataclass
from enum import Enum
from pathlib import Path
from typing import BinaryIO, Literal, Protocol

import anyio.from_thread
from starlette.requests import HTTPConnection

from junction.auth.identity import User
from junction.auth.middleware import current_user
from junction.errors import (
    BadRequest,
    Conflict,
    Forbidden,
    HTTPError,
    InsufficientStorage,
    NotFound,
)
from junction.plugin import ServiceKey
from junction.plugins.contents.models import Model, SaveRequest
from junction.plugins.contents.settings import ContentsSettings

__all__ = [
    "CONTENTS",
    "CONTENTS_ACCESS",
    "REACH_GUARD",
    "BadFormat",
    "BadType",
    "CheckpointNotFound",
    "ContentsAccess",
    "ContentsChange",
    "ContentsObserver",
    "ContentsService",
    "DirectoryNotEmpty",
    "DiskFull",
    "FileExists",
    "FileNotFound",
    "FileTooLarge",
    "HiddenPathRefused",
    "InvalidContent",
    "InvalidCursor",
    "InvalidNotebook",
    "InvalidPath",
    "LinkCheck",
    "OpenedFile",
    "OperationRefused",
    "OutsideRoot",
    "PageOrder",
    "PathGuard",
    "PermissionDenied",
    "Reach",
    "ReachGuard",
    "SaveResult",
    "TrashFailed",
    "UploadOutOfOrder",
    "check_path",
    "guard_request",
    "home_of",
    "link_check",
    "visibility",
    "visible_entries",
]


class InvalidPath(BadRequest):
    """The path is malformed: a '.' or '..' segment, a NUL byte, a backslash."""

    default_reason = "bad path"


class HiddenPathRefused(BadRequest):
    """A write names a hidden file or directory while ``allow_hidden`` is off."""


class BadType(BadRequest):
    """The item is not of the type asked for (a directory read as a file, ...)."""

    default_reason = "bad type"


class BadFormat(BadRequest):
    """The format asked for does not fit (binary file read as text, unknown format)."""

    default_reason = "bad format"


class InvalidContent(BadRequest):
    """A save body cannot be turned into bytes: missing fields, wrong types, bad base64."""


class InvalidNotebook(BadRequest):
    """A notebook failed nbformat validation; nothing was written."""


class InvalidCursor(BadRequest):
    """The ``after`` cursor of a directory-order page is not one this server gave out."""


class DirectoryNotEmpty(BadRequest):
    """Deleting a non-empty directory needs the trash or ``always_delete_dir``."""


class UploadOutOfOrder(BadRequest):
    """A chunk arrived that does not continue the upload in progress."""


class TrashFailed(BadRequest):
    """Moving to the trash failed; nothing was deleted."""


class OperationRefused(BadRequest):
    """The operating system answered EINVAL or EIO: a special file that cannot be read
    so (procfs, sysfs, devices) or a failing disk."""


class FileTooLarge(BadRequest):
    """The file or folder is above a configured size limit for this operation."""


class OutsideRoot(Forbidden):
    """The path goes through a link that leads outside the root directory."""


class PermissionDenied(Forbidden):
    """The operating system refused the operation (permissions, read-only filesystem)."""


class FileNotFound(NotFound):
    """Nothing exists at the path (hidden items look missing too)."""


class CheckpointNotFound(NotFound):
    """The file has no checkpoint with that id."""


class FileExists(Conflict):
    """The target of a rename or move already exists."""


class DiskFull(InsufficientStorage):
    """The disk is full, a quota or the file size limit was hit; the old file is intact."""


@dataclass(frozen=True, slots=True)
class SaveResult:
    """What a save did: the saved item's model (without content) and whether it is new."""

    model: Model
    created: bool


@dataclass(frozen=True, slots=True)
class ContentsChange:
    """A change the service made: ``saved`` (``path``), ``renamed`` (``path`` to
    ``new_path``; a directory moves everything below it) or ``deleted`` (``path``)."""

    kind: Literal["saved", "renamed", "deleted"]
    path: str
    new_path: str | None = None


PageOrder = Literal["name", "directory"]
"""How the entries of a directory page are ordered: by name (code point order, the default)
or in the order the filesystem returns them (cheaper: no need to read every name first)."""

LinkCheck = Callable[[str], bool]
"""Given the API path a link in a listing leads to, whether the caller may see it there (the
link is left out of the listing otherwise); called from an AnyIO worker thread."""

ContentsObserver = Callable[[ContentsChange], Awaitable[None]]
"""Awaited after each successful save, rename and delete; its errors are logged, not raised."""


@dataclass(slots=True)
class OpenedFile:
    """A regular file opened for streaming by ``/files``; the receiver must close ``file``."""

    file: BinaryIO
    stat: os.stat_result
    name: str
    path: str


class ContentsService(Protocol):
    """Files, notebooks and directories under the server's root directory.

    Every method is async and never blocks the event loop; filesystem work runs in worker
    threads. Writers of one path are serialised; saves are atomic (readers see the old or
    the new file, never a mix, and a failed save leaves the old file as it was).
    """

    @property
    def settings(self) -> ContentsSettings:
        """The plugin's settings (routes read the request size limit from them)."""
        ...

    async def get(
        self,
        path: str,
        *,
        type: str | None = None,
        format: str | None = None,
        content: bool = True,
        hash: bool = False,
        offset: int | None = None,
        length: int | None = None,
        links: LinkCheck | None = None,
    ) -> Model:
        """Return the model of the item at ``path``; called for ``GET /api/contents``.

        ``type`` (None, 'file', 'notebook', 'directory') and ``format`` (None, 'text',
        'base64') say how to read it; ``offset``/``length`` read a byte range of a file.
        Directories list every visible entry (with ``links``, only the links it lets
        through). Raises FileNotFound, BadType, BadFormat, FileTooLarge, OutsideRoot.
        """
        ...

    async def list_directory(
        self,
        path: str,
        *,
        limit: int,
        after: str | None = None,
        order: PageOrder = "name",
        visible: Callable[[list[str]], list[str]] | None = None,
        links: LinkCheck | None = None,
    ) -> Model:
        """Return a directory model whose content is one page of up to ``limit`` entries;
        called for ``GET /api/contents/{dir}?limit=...``.

        By ``order="name"`` the page holds the entries whose names sort after ``after`` (a
        name); by ``order="directory"`` it continues the filesystem's order from ``after``
        (an opaque cursor a previous page gave as ``next``), reading no further into the
        directory than the page needs, and ``total`` is known (else None) only once the
        directory was read to its end. The model's ``pagination`` says how to get the next
        page. With ``visible`` (given the API paths of the directory's entries, it returns
        those the caller may see; call it from the event loop or an AnyIO worker thread) the
        others are left out before paging: neither the page, nor ``next``, nor ``total``
        tells of them; so are the links ``links`` refuses. Raises FileNotFound, BadType,
        InvalidCursor (a malformed directory-order cursor).
        """
        ...

    async def new_untitled(self, path: str, *, type: str = "", ext: str = "") -> Model:
        """Create an untitled file, notebook or directory in directory ``path``.

        Names follow Jupyter: ``untitled.txt``, ``Untitled.ipynb``, ``Untitled Folder``, then
        ``untitled1.txt``... Raises FileNotFound when ``path`` is not a directory.
        """
        ...

    async def copy(self, from_path: str, to_dir: str) -> Model:
        """Copy a file or folder into directory ``to_dir`` (``name-Copy1.ext`` if taken)."""
        ...

    async def save(self, path: str, request: SaveRequest) -> SaveResult:
        """Save a model or one upload chunk at ``path``; called for ``PUT``.

        Raises InvalidContent, InvalidNotebook, UploadOutOfOrder, DiskFull; on any error the
        previous file is unchanged.
        """
        ...

    async def rename(self, path: str, new_path: str) -> Model:
        """Move ``path`` to ``new_path`` (checkpoints follow). Raises FileExists."""
        ...

    async def delete(self, path: str) -> None:
        """Delete ``path`` (to the trash when configured). Raises DirectoryNotEmpty."""
        ...

    async def create_checkpoint(self, path: str) -> Model:
        """Save a copy of the file as its checkpoint; returns ``{"id", "last_modified"}``."""
        ...

    async def list_checkpoints(self, path: str) -> list[Model]:
        """The file's checkpoints (zero or one)."""
        ...

    async def restore_checkpoint(self, path: str, checkpoint_id: str) -> None:
        """Replace the file by its checkpoint, atomically. Raises CheckpointNotFound."""
        ...

    async def delete_checkpoint(self, path: str, checkpoint_id: str) -> None:
        """Remove a checkpoint. Raises CheckpointNotFound."""
        ...

    async def open_file(self, path: str) -> OpenedFile:
        """Open a regular file for raw streaming (``/files``). Raises FileNotFound, BadType."""
        ...

    async def os_path(self, path: str) -> Path:
        """The absolute filesystem path of ``path``, checked to stay inside the root.

        For plugins that hand paths to other programs (a kernel's working directory).
        """
        ...

    async def trust_notebook(self, path: str) -> None:
        """Sign the notebook at ``path`` as it is now, so reading it marks its code cells
        trusted until its content changes; called for ``POST .../trust``. Raises
        FileNotFound, BadType (not a notebook)."""
        ...

    def add_observer(self, observer: ContentsObserver) -> None:
        """Call ``observer`` after every successful save, rename and delete from now on.

        Called by plugins in their lifespan (collaboration keeps file ids and rooms on
        their paths); uploads report ``saved`` once, with their last chunk.
        """
        ...

    async def resolve_path(self, path: str) -> str | None:
        """The API path of an existing, readable item named by ``path``, or None.

        ``path`` is an API path, a path relative to the root, or an absolute filesystem path
        (``~`` expanded) under the root, as a kernel prints in a traceback. Called for
        ``GET /api/resolvePath``; never raises for a path it cannot resolve.
        """
        ...


CONTENTS: ServiceKey[ContentsService] = ServiceKey("contents")


# -- who reaches which path (multi-user mode) ---------------------------------------------
#
# The service itself knows nothing of users; every route that takes a path from a request
# (the contents routes, /files, /view, /api/resolvePath, nbconvert, a session's or kernel's
# path, a terminal's cwd, jobs' folders) asks check_path first. Without a CONTENTS_ACCESS
# provider (single-user mode) every path under the root is reachable, as always.
#
# check_path judges a path *string*; a user who swaps a link in their home between that
# check and the service's open would reach another user's file. So check_path also
# installs a ReachGuard for the rest of the request (a context variable: AnyIO copies it
# into worker threads), and the service hands it the real path of every descriptor it
# opens (RootPaths.check_fd): what is read or written is judged, not what was named.


class Reach(Enum):
    """How far a user reaches into one path."""

    FULL = "full"
    """The path itself is theirs to read (or write, when that was asked)."""
    ANCESTOR = "ancestor"
    """A folder above what they may reach: readable as a listing of those entries only."""


class ContentsAccess(Protocol):
    """Decides which paths a user reaches (their home, folders shared with them, ...).

    Paths are API paths (``/``-separated, relative to the root, no leading slash).
    """

    async def check(self, user: User, path: str, action: str, *, entry: bool = False) -> Reach:
        """How far ``user`` reaches into ``path`` for ``action`` (``read`` or ``write``).

        Links on the way count where they lead; with ``entry`` (deleting or renaming the
        directory entry itself) a link as the last segment counts where it is.

        Raises :class:`~junction.plugins.contents.service.FileNotFound` when the path is
        out of reach (so its existence leaks nothing) and
        :class:`~junction.errors.Forbidden` for a write to what the user may only read.
        """
        ...

    def check_open(self, user: User, path: str, real: str, action: str) -> Reach:
        """How far ``user`` reaches into ``real`` for ``action``: the link-free API path of
        what the contents service just opened for ``path`` (the kernel's name of the open
        descriptor; for an entry of an open directory, that directory's name plus the
        entry's). Called by :class:`ReachGuard` after every open of a request that asked
        :meth:`check`, from worker threads or the event loop: it must neither block nor
        await.

        Raises like :meth:`check`, naming ``path`` only (never where it really leads).
        """
        ...

    def visible(self, user: User, path: str) -> bool:
        """Whether ``path`` shows in a listing of its parent for ``user``."""
        ...

    def home(self, user: User) -> str | None:
        """The user's home folder (API path), or None when they have none (the root)."""
        ...


CONTENTS_ACCESS: ServiceKey[ContentsAccess] = ServiceKey("contents-access")
"""Per-user path access in multi-user mode (provided by the ``users`` plugin)."""


def _access(conn: HTTPConnection) -> ContentsAccess | None:
    access: ContentsAccess | None = conn.app.state.services.get_optional(CONTENTS_ACCESS)
    return access


@dataclass(frozen=True, slots=True)
class ReachGuard:
    """Judges what the contents service opens for one request against its user's reach.

    Installed in :data:`REACH_GUARD` by :func:`check_path` (multi-user mode only).
    ``ancestors`` are the paths the request was found to reach as :attr:`Reach.ANCESTOR`
    for reading: only their own listings, which the routes filter, may be opened there.
    """

    user: User
    access: ContentsAccess
    ancestors: frozenset[str] = frozenset()

    def judge(self, real: str, path: str, action: str, *, listing: bool = False) -> None:
        """Refuse what was opened at ``real`` (a link-free API path) for ``path`` unless
        the user fully reaches it for ``action`` (``read`` or ``write``); with
        ``listing`` (a directory opened to list it), a folder above their reach is let
        through when the request checked that very folder as such.

        Called by ``RootPaths.check_fd`` right after each open, in any thread. Raises
        :class:`FileNotFound` or :class:`~junction.errors.Forbidden` as the route's own
        check would have.
        """
        reach = self.access.check_open(self.user, path, real, action)
        if reach is Reach.FULL or (listing and action == "read" and real in self.ancestors):
            return
        raise FileNotFound(f"No such file or directory: {path}")


class PathGuard(Protocol):
    """Judges what the contents service opens: :class:`ReachGuard` for a request; a plugin
    working for several users at once (a collaboration room) installs its own."""

    def judge(self, real: str, path: str, action: str, *, listing: bool = False) -> None:
        """Refuse what was opened at ``real`` for ``path`` (see :meth:`ReachGuard.judge`)."""
        ...


REACH_GUARD: ContextVar[PathGuard | None] = ContextVar("junction_reach_guard", default=None)
"""The guard of the work being done (None in single-user mode and outside requests)."""


async def check_path(conn: HTTPConnection, path: str, action: str, *, entry: bool = False) -> Reach:
    """How far the caller reaches into ``path`` (see :meth:`ContentsAccess.check`);
    :attr:`Reach.FULL` in single-user mode.

    In multi-user mode it also installs the request's :class:`ReachGuard`, so whatever the
    contents service opens afterwards in this request is judged where it really is.
    """
    access = _access(conn)
    if access is None:
        return Reach.FULL
    if "\x00" in path:  # as the contents service answers it; no provider need handle it
        raise InvalidPath("invalid path: NUL bytes are not allowed")
    user = current_user(conn.scope)
    path = "/".join(part for part in path.split("/") if part)
    previous = REACH_GUARD.get()
    if not isinstance(previous, ReachGuard):
        previous = None
    keep = previous is not None and previous.user is user and previous.access is access
    ancestors = previous.ancestors if previous is not None and keep else frozenset()
    # Installed before the check: a refused check must leave the request guarded too.
    REACH_GUARD.set(ReachGuard(user, access, ancestors))
    reach = await access.check(user, path, action, entry=entry)
    if reach is Reach.ANCESTOR and action == "read":
        REACH_GUARD.set(ReachGuard(user, access, ancestors | {path}))
    return reach


def guard_request(conn: HTTPConnection) -> None:
    """Install the request's :class:`ReachGuard` (multi-user mode) before the contents
    service looks up a path no route has checked yet, as ``/api/resolvePath`` does: what
    the lookup opens is judged where it really is. No-op in single-user mode."""
    access = _access(conn)
    if access is not None:
        REACH_GUARD.set(ReachGuard(current_user(conn.scope), access))


def visible_entries(
    conn: HTTPConnection, entries: list[dict[str, object]]
) -> list[dict[str, object]]:
    """The entries of a folder listing the caller may see (all in single-user mode)."""
    access = _access(conn)
    if access is None:
        return entries
    user = current_user(conn.scope)
    return [e for e in entries if access.visible(user, str(e.get("path", "")))]


def visibility(conn: HTTPConnection, reach: Reach) -> Callable[[list[str]], list[str]] | None:
    """Which entries of a folder the caller reached with ``reach`` may see, as the
    ``visible`` filter of :meth:`ContentsService.list_directory`; None when they see every
    entry (single-user mode, or :attr:`Reach.FULL`).

    The filter asks :meth:`ContentsAccess.visible` on the event loop, where the access
    rules (shares) change, also when it is called from a worker thread.
    """
    access = _access(conn)
    if access is None or reach is Reach.FULL:
        return None
    user = current_user(conn.scope)
    loop_thread = threading.current_thread()

    def shown(paths: list[str]) -> list[str]:
        return [path for path in paths if access.visible(user, path)]

    def keep(paths: list[str]) -> list[str]:
        if threading.current_thread() is loop_thread:
            return shown(paths)
        return anyio.from_thread.run_sync(shown, paths)

    return keep


def link_check(conn: HTTPConnection) -> LinkCheck | None:
    """Which links the caller may see in a listing, as the ``links`` check of
    :meth:`ContentsService.get` and :meth:`ContentsService.list_directory`: those leading
    where the caller fully reaches for reading (what reading through the link needs, see
    :meth:`ContentsAccess.check`), whatever their reach of the folder listed. None in
    single-user mode, where every link inside the root is listed.

    Each call asks :meth:`ContentsAccess.check` on the event loop; call it from a worker
    thread that holds no token of AnyIO's default limiter (the check may need one).
    """
    access = _access(conn)
    if access is None:
        return None
    user = current_user(conn.scope)

    async def reaches(path: str) -> bool:
        try:
            return await access.check(user, path, "read") is Reach.FULL
        except HTTPError:  # out of reach, or not to be read: the link is not listed
            return False

    def allowed(path: str) -> bool:
        return anyio.from_thread.run(reaches, path)

    return allowed


def home_of(conn: HTTPConnection) -> str | None:
    """The caller's home folder, or None (single-user mode, or no home)."""
    access = _access(conn)
    return None if access is None else access.home(current_user(conn.scope))
