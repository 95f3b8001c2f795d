"""From API paths to filesystem paths, without ever leaving the root.

An API path arrives percent-decoded (Starlette decodes the URL once; a double-encoded
``%252e%252e`` therefore arrives as the literal name ``%2e%2e``). It is checked in two
steps:

1. syntax (:func:`split_api_path`, no disk access): NUL bytes, backslashes and ``.``/``..``
   segments are refused with 400, and so are names that would turn into one of those if
   decoded once more (``%2e%2e``, ``a%2fb``): a file of that name is harmless here, but
   a proxy or client that decodes twice would read it as a traversal. Empty segments
   (``a//b``, leading or trailing ``/``) are dropped as Jupyter does, so ``/etc/passwd``
   means ``etc/passwd`` under the root;
2. resolution (:meth:`RootPaths.resolve`, in a worker thread): links are followed with
   ``realpath`` and the result must be the root or below it (else 403), and, unless
   ``allow_hidden``, neither the asked path nor the resolved one may have a segment starting
   with a dot (404 on read, 400 on write).

Resolution is a check of a path *string*; between it and the use of that string, another
request may rename directories so that the same string leads elsewhere (a request waits
for its path's lock, meanwhile a directory is moved away and one holding a relative link
is moved into its place). So every file or directory is opened first and the *open
descriptor* is checked (:meth:`RootPaths.check_fd`): on Linux the kernel names the opened
object at ``/proc/self/fd/N`` (one ``readlink``, about 5 to 10 microseconds), and that
name must be inside the root and not hidden. Everything done afterwards goes through that
descriptor (``dir_fd=`` calls, ``AtomicFile``), so what was checked is what is used.
Where no such name exists (neither ``/proc`` nor ``F_GETPATH``) the descriptor check is
skipped and a warning is logged at startup.

In multi-user mode the same name is judged against the requesting user's reach too
(:class:`~junction.plugins.contents.service.ReachGuard`, installed by ``check_path``): a
user who re-points a link in their home after the route checked the path cannot make
the service open another user's file. A directory opened to work on one of its entries
(:meth:`RootPaths.parent`) is judged as that entry (the directory's name plus the
entry's), as the route judged it.

Moving a link changes where a relative link leads: :meth:`RootPaths.check_moved_link`
checks a link against its new place before it is moved.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from enum import Enum
from urllib.parse import unquote

from junction.errors import HTTPError
from junction.fdpaths import FdPath, find_fd_path
from junction.plugins.contents.service import (
    REACH_GUARD,
    FileNotFound,
    HiddenPathRefused,
    InvalidPath,
    OutsideRoot,
)

__all__ = [
    "DIRECTORY_FLAGS",
    "Access",
    "FdPath",
    "ResolvedPath",
    "RootPaths",
    "find_fd_path",
    "is_hidden_name",
    "split_api_path",
]

DIRECTORY_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC
"""How directories are opened to work inside them."""

_O_PATH: int = getattr(os, "O_PATH", 0)  # Linux: open without reading, to name and stat


class Access(Enum):
    """Why a path is resolved: hidden paths look missing to reads and are refused to writes."""

    READ = "read"
    WRITE = "write"


def split_api_path(path: str) -> list[str]:
    """Check the syntax of an API path and return its segments ('' gives [])."""
    if "\x00" in path:
        raise InvalidPath("invalid path: NUL bytes are not allowed")
    if "\\" in path:
        raise InvalidPath(f"invalid path {path!r}: backslashes are not allowed")
    parts = [part for part in path.split("/") if part]
    for part in parts:
        if part in (".", ".."):
            raise InvalidPath(f"invalid path {path!r}: '.' and '..' segments are not allowed")
        if "%" in part:
            decoded = unquote(part)
            if decoded in (".", "..") or any(char in decoded for char in ("/", "\\", "\x00")):
                raise InvalidPath(
                    f"invalid path {path!r}: names must not encode '.', '..', '/', '\\' or NUL"
                )
    return parts


def is_hidden_name(name: str) -> bool:
    """Whether a single name is hidden (starts with a dot)."""
    return name.startswith(".")


@dataclass(frozen=True, slots=True)
class ResolvedPath:
    """A checked API path and where it lives on disk.

    ``os_path`` has every link resolved and lies inside the root; ``api`` is the normalised
    API path ('' for the root), ``name`` its last segment.
    """

    api: str
    os_path: str

    @property
    def name(self) -> str:
        """The last segment of the API path ('' for the root)."""
        return self.api.rpartition("/")[2]

    @property
    def name_on_disk(self) -> str:
        """The last segment of ``os_path``: the name inside :meth:`RootPaths.parent`."""
        return os.path.basename(self.os_path)

    @property
    def is_root(self) -> bool:
        """Whether this is the root directory itself."""
        return not self.api


class RootPaths:
    """Resolves API paths under one root directory; see the module docstring."""

    def __init__(self, root: str, *, allow_hidden: bool) -> None:
        self.root = os.path.realpath(root)
        self.allow_hidden = allow_hidden
        self._prefix = self.root.rstrip(os.sep) + os.sep
        self.fd_path: FdPath | None = find_fd_path()
        """Names open descriptors for :meth:`check_fd`; None where the system cannot."""

    def normalize(self, path: str) -> str:
        """The normalised API path (syntax checked, no disk access)."""
        return "/".join(split_api_path(path))

    def is_hidden(self, api_path: str) -> bool:
        """Whether an API path has a hidden segment (ignores ``allow_hidden``)."""
        return any(is_hidden_name(part) for part in split_api_path(api_path))

    def contains(self, os_path: str) -> bool:
        """Whether a resolved filesystem path is the root or below it."""
        return os_path == self.root or os_path.startswith(self._prefix)

    def relative(self, os_path: str) -> str:
        """The API path of a resolved filesystem path inside the root."""
        if os_path == self.root:
            return ""
        return os_path[len(self._prefix) :].replace(os.sep, "/")

    def check_hidden(self, path: str, access: Access, verb: str = "write") -> str:
        """Syntax-check ``path`` and apply the hidden rule; return the normalised path.

        No disk access, so routes can refuse early.
        """
        parts = split_api_path(path)
        api = "/".join(parts)
        if not self.allow_hidden and any(is_hidden_name(part) for part in parts):
            self._refuse_hidden(api, access, verb)
        return api

    def resolve(self, path: str, access: Access, verb: str = "write") -> ResolvedPath:
        """Check ``path`` and resolve it on disk (blocking: call from a worker thread).

        The item need not exist (a save may create it); links are followed as far as they
        exist. Raises InvalidPath, FileNotFound or HiddenPathRefused (hidden), OutsideRoot.
        """
        api = self.check_hidden(path, access, verb)
        joined = os.path.join(self.root, *api.split("/")) if api else self.root
        real = os.path.realpath(joined)
        if real != joined:  # a link on the way: where it leads must be allowed too
            self._check_target(api, real, access, verb)
        return ResolvedPath(api=api, os_path=real)

    def resolve_entry(self, path: str, access: Access, verb: str = "write") -> ResolvedPath:
        """Like :meth:`resolve`, but a link as the last segment stays a link.

        For operations on the directory entry itself (rename, delete): moving a link must
        not move what it points to. A link leading outside the root is still refused.
        """
        api = self.check_hidden(path, access, verb)
        if not api:
            return ResolvedPath(api="", os_path=self.root)
        parent_api, _, name = api.rpartition("/")
        parent = self.resolve(parent_api, access, verb)
        os_path = os.path.join(parent.os_path, name)
        if os.path.islink(os_path):
            self._check_target(api, os.path.realpath(os_path), access, verb)
        return ResolvedPath(api=api, os_path=os_path)

    def where(self, fd: int) -> str | None:
        """The real path of an open file or directory, or None if the system cannot say."""
        if self.fd_path is None:
            return None
        return self.fd_path(fd)

    def check_fd(
        self,
        fd: int,
        api: str,
        access: Access = Access.WRITE,
        verb: str = "write",
        *,
        listing: bool = False,
        entry: str | None = None,
    ) -> None:
        """Refuse an open file or directory that is outside the root, or hidden, or (in
        multi-user mode) out of the requesting user's reach.

        Called right after every open: whatever the path string led to, the descriptor is
        what will be read or written. ``listing`` says a directory is opened to list it;
        ``entry`` names the entry of the directory ``fd`` that will be worked on (judged
        instead of the directory). Raises OutsideRoot, FileNotFound (read) and
        HiddenPathRefused (write) for hidden places, and the reach guard's errors.
        """
        real = self.where(fd)
        if real is not None:
            self._check_target(api, real, access, verb)
            guard = REACH_GUARD.get()
            if guard is not None:
                judged = self.relative(real)
                if entry is not None:
                    judged = f"{judged}/{entry}" if judged else entry
                guard.judge(judged, api, access.value, listing=listing)

    def open(
        self,
        os_path: str,
        flags: int,
        api: str,
        access: Access = Access.WRITE,
        *,
        verb: str = "write",
        dir_fd: int | None = None,
        mode: int = 0o666,
        listing: bool = False,
        entry: str | None = None,
    ) -> int:
        """``os.open`` followed by :meth:`check_fd`; the descriptor is closed if refused."""
        fd = os.open(os_path, flags | os.O_CLOEXEC, mode, dir_fd=dir_fd)
        try:
            self.check_fd(fd, api, access, verb, listing=listing, entry=entry)
        except BaseException:
            os.close(fd)
            raise
        return fd

    def open_dir(
        self,
        os_path: str,
        api: str,
        access: Access = Access.WRITE,
        *,
        listing: bool = False,
        entry: str | None = None,
    ) -> int:
        """Open a directory to work inside it, checked (see :meth:`open`)."""
        return self.open(os_path, DIRECTORY_FLAGS, api, access, listing=listing, entry=entry)

    @contextmanager
    def directory(
        self, os_path: str, api: str, access: Access = Access.WRITE, *, listing: bool = False
    ) -> Iterator[int]:
        """:meth:`open_dir` as a context manager that closes the descriptor; ``listing``
        when it is opened to list it (see :meth:`check_fd`)."""
        fd = self.open_dir(os_path, api, access, listing=listing)
        try:
            yield fd
        finally:
            os.close(fd)

    @contextmanager
    def parent(self, resolved: ResolvedPath, access: Access = Access.WRITE) -> Iterator[int]:
        """The checked, open directory holding ``resolved`` (whose name is its basename).

        Raises FileNotFound naming the directory when it does not exist, and the errors of
        :meth:`check_fd` naming ``resolved`` (whose entry in the directory is judged).
        """
        if resolved.is_root:
            raise InvalidPath("the root directory has no parent inside the root")
        try:
            fd = self.open_dir(
                os.path.dirname(resolved.os_path),
                resolved.api,
                access,
                entry=resolved.name_on_disk,
            )
        except (FileNotFoundError, NotADirectoryError):
            directory_api = resolved.api.rpartition("/")[0]
            raise FileNotFound(f"directory {directory_api!r} does not exist") from None
        try:
            yield fd
        finally:
            os.close(fd)

    def check_moved_link(self, text: str, new_dir: str, source: str, target: str) -> None:
        """Refuse to move a link (content ``text``) into directory ``new_dir`` (a real path)
        if from there it would lead outside the root or to a hidden place.

        A relative link leads somewhere else once moved; only its old place was checked
        when its path was resolved.
        """
        real = os.path.realpath(os.path.join(new_dir, text))
        move = f"cannot move the link {source!r} to {target!r}"
        if not self.contains(real):
            raise OutsideRoot(f"{move}: from there it would lead outside the root directory")
        if not self.allow_hidden and self._hidden_inside(real):
            raise HiddenPathRefused(f"{move}: from there it would lead to a hidden place")

    def _hidden_inside(self, real: str) -> bool:
        """Whether a path inside the root has a hidden segment below the root."""
        return os.sep + "." in os.sep + real[len(self._prefix) :]

    def link_target(self, dir_fd: int, name: str, os_dir: str) -> tuple[os.stat_result, str] | None:
        """Where the link ``name`` of the open directory ``dir_fd`` (at ``os_dir``) leads
        when that is inside the root and not hidden: the target's ``stat`` and real path;
        None otherwise, and for a broken link or a loop.

        The kernel follows the link: the target is opened with ``O_PATH`` (nothing is read,
        a FIFO does not block) and the open descriptor named, as :meth:`check_fd` does.
        No Python runs per path part (``realpath`` takes one ``lstat`` for each), at most
        40 links are followed and a loop fails at once, however long the link's text.
        Without ``O_PATH`` or descriptor names, ``realpath`` judges the link. In multi-user
        mode a target the requesting user does not fully reach for reading is None too.
        """
        if _O_PATH and self.fd_path is not None:
            try:
                target = os.open(name, _O_PATH | os.O_CLOEXEC, dir_fd=dir_fd)
            except OSError:  # broken, a loop, too deep, no permission
                return None
            try:
                st = os.fstat(target)
                real = self.fd_path(target)
            except OSError:
                return None
            finally:
                os.close(target)
        else:  # pragma: no cover - systems without O_PATH or descriptor names
            real = os.path.realpath(os.path.join(self.where(dir_fd) or os_dir, name))
            try:
                st = os.stat(name, dir_fd=dir_fd)
            except OSError:
                return None
        if not self.contains(real) or (not self.allow_hidden and self._hidden_inside(real)):
            return None
        guard = REACH_GUARD.get()
        if guard is not None:
            target_api = self.relative(real)
            try:
                guard.judge(target_api, target_api, "read")
            except HTTPError:
                return None
        return st, real

    def _check_target(self, api: str, real: str, access: Access, verb: str) -> None:
        if not self.contains(real):
            raise OutsideRoot(f"{api!r} leads outside the root directory through a link")
        if not self.allow_hidden and self._hidden_inside(real):
            self._refuse_hidden(api, access, verb)

    @staticmethod
    def _refuse_hidden(api: str, access: Access, verb: str) -> None:
        if access is Access.READ:
            raise FileNotFound(f"file or directory {api!r} does not exist")
        raise HiddenPathRefused(f"cannot {verb} hidden file or directory {api!r}")
