"""``LocalContents``: the contents service over a directory of the local filesystem.

Each public method resolves its paths (``paths.py``), takes the per-path lock when it
writes, and runs its filesystem work in a worker thread, so the event loop never waits on
the disk. The one exception is reading a small file (``inline_read_bytes``) when the root is
on a local filesystem (``mounts.py``): the page cache answers that faster than a thread
hop. Operating-system errors are translated into the errors of ``service.py`` by
:func:`translate`, with messages naming API paths only.

Creating (untitled items, copies) lives in ``creating.py``; saving (models, chunked
uploads) in ``saving.py``; reads of file bytes in ``reading.py``; listings in
``listing.py``; atomic writes in ``atomic.py``.
"""

from __future__ import annotations

import errno
import logging
import os
import posixpath
import shutil
import stat
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, TypeVar

import anyio

from junction.errors import BadRequest, HTTPError
from junction.events import EventBus
from junction.eventschemas import CONTENTS_EVENTS
from junction.plugins.contents.atomic import (
    AtomicFile,
    PathLocks,
    WriteBlock,
    rename_noreplace,
)
from junction.plugins.contents.checkpoints import CHECKPOINT_DIR, FileCheckpoints
from junction.plugins.contents.creating import Creator
from junction.plugins.contents.entries import ModelFactory
from junction.plugins.contents.fairness import PerUserSlots
from junction.plugins.contents.listing import DirectoryLister, NameFilter
from junction.plugins.contents.models import Model, SaveRequest
from junction.plugins.contents.mounts import is_local
from junction.plugins.contents.notebooks import notebook_from_bytes
from junction.plugins.contents.oserrors import os_errors, translate
from junction.plugins.contents.paths import DIRECTORY_FLAGS, Access, ResolvedPath, RootPaths
from junction.plugins.contents.reading import (
    HASH_ALGORITHM,
    decode,
    hash_file,
    open_regular,
    read_bytes,
)
from junction.plugins.contents.saving import Saver
from junction.plugins.contents.service import (
    REACH_GUARD,
    BadType,
    ContentsChange,
    ContentsObserver,
    DirectoryNotEmpty,
    FileExists,
    FileNotFound,
    FileTooLarge,
    InvalidPath,
    LinkCheck,
    OpenedFile,
    PageOrder,
    ReachGuard,
    SaveResult,
    TrashFailed,
)
from junction.plugins.contents.settings import ContentsSettings
from junction.plugins.contents.trees import move_across
from junction.plugins.contents.trust import NotebookTrust
from junction.plugins.contents.uploads import Uploads

__all__ = ["LocalContents", "Trash"]

log = logging.getLogger("junction.contents")

T = TypeVar("T")

_INLINE_PATH_MAX = 1024
_INLINE_PATH_DEPTH = 32
"""Longer or deeper API paths are resolved in a thread (a system call per segment)."""
Trash = Callable[[str], None]
"""Moves a file or directory (absolute path) to the trash."""

MIB = 1 << 20


class _ListingDeferred(Exception):
    """A directory listing that may call a link check: it runs on the judging limiter."""


class LocalContents:
    """Files, notebooks and directories under ``root``; implements ``ContentsService``.

    ``write_block`` is the single function through which saved bytes reach the disk
    (``os.write`` by default). It is a documented test hook: replace it on the instance to
    simulate a full disk (a short write, then ``OSError(ENOSPC)``), as the kernel does.
    """

    def __init__(
        self,
        root: str | Path,
        settings: ContentsSettings,
        *,
        trash: Trash | None = None,
        trust: NotebookTrust | None = None,
    ) -> None:
        self.settings = settings
        self.root = os.path.abspath(root)
        self.trust = trust
        """Signs notebooks and marks their cells trusted; None: every cell reads untrusted."""
        self.paths = RootPaths(str(root), allow_hidden=settings.allow_hidden)
        self.factory = ModelFactory()
        self.names = NameFilter(allow_hidden=settings.allow_hidden, hide_globs=settings.hide_globs)
        self.lister = DirectoryLister(
            self.paths, self.factory, self.names, settings.listing_cache_dirs
        )
        self.locks = PathLocks()
        self.uploads = Uploads(settings.upload_idle_timeout)
        self.trash = trash if settings.delete_to_trash else None
        self.max_read = settings.max_read_mb * MIB
        self.inline_read_bytes = settings.inline_read_bytes if is_local(self.root) else 0
        """Largest file read on the event loop; 0 when the root is not on a local disk."""
        try:
            self.root_dev = os.stat(self.root).st_dev
            """The root's filesystem; files on others (mounts below it) use threads."""
        except OSError:  # no root yet: every read goes through a thread
            self.root_dev, self.inline_read_bytes = -1, 0
        self.write_block: WriteBlock = os.write
        self.checkpoints = FileCheckpoints(
            self.paths, write_block=self._write, durable=settings.fsync
        )
        self.creator = Creator(self)
        self.saver = Saver(self)
        self.observers: list[ContentsObserver] = []
        self.events: EventBus | None = None  # set by the plugin's lifespan
        self._judging: anyio.CapacityLimiter | None = None
        self._listings = PerUserSlots()

    def _write(self, fd: int, data: memoryview) -> int:
        return self.write_block(fd, data)

    def atomic_file(self, dir_fd: int) -> AtomicFile:
        """A new atomic file in the open, checked directory ``dir_fd`` that writes through
        :attr:`write_block`."""
        return AtomicFile(dir_fd, write_block=self._write, durable=self.settings.fsync)

    def model(self, resolved: ResolvedPath, st: os.stat_result) -> Model:
        """The model without content of a resolved item (``st`` follows links)."""
        model = self.factory.model(resolved.api, resolved.name, st)
        if model is None:
            raise BadType(f"{resolved.api!r} is not a regular file or directory")
        return model

    async def aclose(self) -> None:
        """Discard unfinished uploads; called when the plugin stops."""
        self.uploads.close()
        if self.trust is not None:
            await self._run(self.trust.close)

    @staticmethod
    async def _run(func: Callable[..., T], *args: Any) -> T:
        return await anyio.to_thread.run_sync(func, *args)

    async def _run_judging(self, links: LinkCheck | None, func: Callable[..., T], *args: Any) -> T:
        """:meth:`_run` for work that may call a ``links`` check: such a thread waits on the
        event loop, where the check may need a thread of the default limiter, so it takes a
        token of a limiter of its own (as many as the default one); holding one of the
        default's, a burst of listings could hold them all and wait forever."""
        if links is None:
            return await self._run(func, *args)
        if self._judging is None:
            tokens = anyio.to_thread.current_default_thread_limiter().total_tokens
            self._judging = anyio.CapacityLimiter(tokens)
        guard = REACH_GUARD.get()
        user = guard.user.name if isinstance(guard, ReachGuard) else None
        async with self._listings.hold(user):  # one user's burst cannot take every token
            return await anyio.to_thread.run_sync(func, *args, limiter=self._judging)

    # -- reading ---------------------------------------------------------------------------

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
        """See ``ContentsService.get``."""
        if self.inline_read_bytes and offset is None and length is None:
            model = self._get_small_file(path, type, format, content, hash)
            if model is not None:
                return model
        if not content:
            links = None  # no listing: nothing to judge
        args = (path, type, format, content, hash, offset, length)
        if links is None:
            return await self._run(self._get, *args)
        # A file read never calls the check: it stays on the default limiter, so a burst of
        # listings cannot hold up other users' reads. A directory comes back to be listed
        # on the judging limiter.
        try:
            return await self._run(self._get, *args, None, True)
        except _ListingDeferred:
            return await self._run_judging(links, self._get, *args, links)

    def _get_small_file(
        self, path: str, kind: str | None, format: str | None, content: bool, want_hash: bool
    ) -> Model | None:
        """:meth:`_get` on the event loop for a small regular file that is not read as a
        notebook (see ``inline_read_bytes``); None for anything else.

        Only files on the root's own filesystem qualify (a mount below the root may be a
        network share, or procfs), reached through a short path (resolving costs a system
        call per segment), and read up to the limit: a file that grew past it since its
        ``stat``, or a hash that would need the whole file, goes to the thread instead.
        """
        if (
            kind not in (None, "file")
            or (kind is None and path.endswith(".ipynb"))  # settled before resolving
            or (want_hash and not content)
            or len(path) > _INLINE_PATH_MAX
            or path.count("/") > _INLINE_PATH_DEPTH
        ):
            return None
        resolved = self.paths.resolve(path, Access.READ)
        if kind is None and resolved.api.endswith(".ipynb"):
            return None
        limit = self.inline_read_bytes
        with os_errors(resolved.api, "read"):
            st = os.stat(resolved.os_path)
            if not stat.S_ISREG(st.st_mode) or st.st_size > limit or st.st_dev != self.root_dev:
                return None
            try:
                return self._file_model(
                    resolved, False, format, content, want_hash, None, None, max_bytes=limit
                )
            except FileTooLarge:
                return None

    def _get(
        self,
        path: str,
        kind: str | None,
        format: str | None,
        content: bool,
        want_hash: bool,
        offset: int | None,
        length: int | None,
        links: LinkCheck | None = None,
        defer_listing: bool = False,
    ) -> Model:
        resolved = self.paths.resolve(path, Access.READ)
        api = resolved.api
        with os_errors(api, "read"):
            st = os.stat(resolved.os_path)
            ranged = offset is not None or length is not None
            if stat.S_ISDIR(st.st_mode):
                if kind not in (None, "directory"):
                    raise BadType(f"{api} is a directory, not a {kind}")
                if ranged:
                    raise BadRequest("offset and length apply to files only")
                if defer_listing and content:
                    raise _ListingDeferred
                with self.paths.directory(resolved.os_path, api, Access.READ, listing=True) as fd:
                    model = self.model(resolved, os.fstat(fd))
                    if content:
                        model["content"] = self.lister.listing_at(fd, resolved.os_path, api, links)
                        model["format"] = "json"
                return model
            if not stat.S_ISREG(st.st_mode):
                raise BadType(f"{api!r} is not a regular file or directory")
            if kind == "directory":
                raise BadType(f"{api} is not a directory")
            notebook = kind == "notebook" or (kind is None and api.endswith(".ipynb"))
            if notebook and ranged:
                raise BadRequest("offset and length apply to files, not notebooks; use type=file")
            return self._file_model(resolved, notebook, format, content, want_hash, offset, length)

    def _file_model(
        self,
        resolved: ResolvedPath,
        notebook: bool,
        format: str | None,
        content: bool,
        want_hash: bool,
        offset: int | None,
        length: int | None,
        *,
        max_bytes: int | None = None,
    ) -> Model:
        api = resolved.api
        with open_regular(self.paths, resolved.os_path, api) as handle:
            fd = handle.fileno()
            st = os.fstat(fd)
            if max_bytes is not None and st.st_size > max_bytes:
                raise FileTooLarge(f"{api!r} is larger than {max_bytes} bytes")
            model = self.model(resolved, st)
            model["type"] = "notebook" if notebook else "file"
            model["mimetype"] = None if notebook else self.factory.mimetype(resolved.name)
            limit = self.max_read if max_bytes is None else max_bytes
            data = None
            if content:
                data = read_bytes(
                    fd,
                    st.st_size,
                    offset=offset,
                    length=length,
                    max_bytes=limit,
                    api=api,
                )
                if notebook:
                    model["content"] = self.marked(notebook_from_bytes(data.data, api))
                    model["format"] = "json"
                else:
                    ranged = offset is not None or length is not None
                    text, used, start, count = decode(data, st.st_size, format, api, ranged=ranged)
                    model["content"] = text
                    model["format"] = used
                    if model["mimetype"] is None:
                        model["mimetype"] = (
                            "text/plain" if used == "text" else ("application/octet-stream")
                        )
                    if ranged:
                        model["range"] = {"offset": start, "length": count}
            if want_hash:
                model["hash"] = hash_file(fd, st.st_size, max_bytes=limit, api=api, data=data)
                model["hash_algorithm"] = HASH_ALGORITHM
        return model

    def marked(self, notebook: dict[str, Any]) -> dict[str, Any]:
        """A notebook just read, its code cells marked trusted or not (``metadata.trusted``)."""
        if self.trust is not None:
            self.trust.mark(notebook)
        else:
            for cell in notebook.get("cells") or ():
                if isinstance(cell, dict) and cell.get("cell_type") == "code":
                    metadata = cell.setdefault("metadata", {})
                    if isinstance(metadata, dict):
                        metadata["trusted"] = False
        return notebook

    async def trust_notebook(self, path: str) -> None:
        """See ``ContentsService.trust_notebook``."""
        await self._run(self._trust_notebook, path)

    def _trust_notebook(self, path: str) -> None:
        resolved = self.paths.resolve(path, Access.READ)
        api = resolved.api
        if not api.endswith(".ipynb"):
            raise BadType(f"{api!r} is not a notebook")
        if self.trust is None:
            raise BadRequest("notebook trust is not available on this server")
        with os_errors(api, "read"):
            if stat.S_ISDIR(os.stat(resolved.os_path).st_mode):
                raise BadType(f"{api!r} is not a notebook")
            with open_regular(self.paths, resolved.os_path, api) as handle:
                fd = handle.fileno()
                st = os.fstat(fd)
                data = read_bytes(
                    fd, st.st_size, offset=None, length=None, max_bytes=self.max_read, api=api
                )
        log.warning("trusting notebook %s", api)
        self.trust.sign(notebook_from_bytes(data.data, api))

    async def resolve_path(self, path: str) -> str | None:
        """See ``ContentsService.resolve_path``."""
        return await self._run(self._resolve_path, path)

    def _resolve_path(self, path: str) -> str | None:
        if "\0" in path:
            return None  # no file has such a name (and os.path functions raise on it)
        expanded = os.path.expanduser(path)
        if os.path.isabs(expanded):
            # Kernels print paths under root_dir as configured, or with links resolved; the
            # last try resolves links on the way (the API path then names the link's target).
            absolute = os.path.abspath(expanded)
            api = None
            for root, candidate in (
                (self.root, absolute),
                (self.paths.root, absolute),
                (self.paths.root, os.path.realpath(absolute)),
            ):
                prefix = root.rstrip(os.sep) + os.sep
                if candidate == root:
                    api = ""
                elif candidate.startswith(prefix):
                    api = candidate[len(prefix) :].replace(os.sep, "/")
                if api is not None:
                    break
            if api is None:
                return None
        else:
            api = posixpath.normpath(path.replace(os.sep, "/"))
            api = "" if api == "." else api
        try:
            model = self._get(api, None, None, False, False, None, None)
        except HTTPError:
            return None
        path_found: str = model["path"]
        return path_found

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
        """See ``ContentsService.list_directory``."""
        return await self._run_judging(
            links, self._list_directory, path, limit, after, order, visible, links
        )

    def _list_directory(
        self,
        path: str,
        limit: int,
        after: str | None,
        order: PageOrder,
        visible: Callable[[list[str]], list[str]] | None,
        links: LinkCheck | None,
    ) -> Model:
        resolved = self.paths.resolve(path, Access.READ)
        with os_errors(resolved.api, "list"):
            st = os.stat(resolved.os_path)
            if not stat.S_ISDIR(st.st_mode):
                raise BadType(f"{resolved.api} is not a directory")
            with self.paths.directory(
                resolved.os_path, resolved.api, Access.READ, listing=True
            ) as fd:
                model = self.model(resolved, os.fstat(fd))
                page = self.lister.page_at(
                    fd, resolved.os_path, resolved.api, limit, after, visible, order, links
                )
        model["content"] = page.entries
        model["format"] = "json"
        model["pagination"] = {
            "limit": limit,
            "after": after,
            "next": page.next,
            "total": page.total,
        }
        return model

    async def open_file(self, path: str) -> OpenedFile:
        """See ``ContentsService.open_file``."""
        return await self._run(self._open_file, path)

    def _open_file(self, path: str) -> OpenedFile:
        resolved = self.paths.resolve(path, Access.READ)
        with os_errors(resolved.api, "read"):
            handle = open_regular(self.paths, resolved.os_path, resolved.api)
            st = os.fstat(handle.fileno())
        return OpenedFile(file=handle, stat=st, name=resolved.name, path=resolved.api)

    async def os_path(self, path: str) -> Path:
        """See ``ContentsService.os_path``."""
        resolved = await self._run(self.paths.resolve, path, Access.READ)
        return Path(resolved.os_path)

    # -- creating --------------------------------------------------------------------------

    async def new_untitled(self, path: str, *, type: str = "", ext: str = "") -> Model:
        """See ``ContentsService.new_untitled``."""
        model = await self._run(self.creator.new_untitled, path, type, ext)
        self._emit("create", model["path"])
        return model

    async def copy(self, from_path: str, to_dir: str) -> Model:
        """See ``ContentsService.copy``."""
        model = await self._run(self.creator.copy, from_path, to_dir)
        self._emit("copy", model["path"], from_path.strip("/"))
        return model

    # -- saving ----------------------------------------------------------------------------

    async def save(self, path: str, request: SaveRequest) -> SaveResult:
        """See ``ContentsService.save``."""
        result = await self.saver.save(path, request)
        if request.chunk is None or request.chunk == -1:
            await self._notify(ContentsChange("saved", result.model["path"]))
            # As jupyter_server's handler names it: a PUT that creates an item uploads it.
            upload = request.chunk is not None or result.created
            self._emit("upload" if upload else "save", result.model["path"])
        return result

    def _emit(self, action: str, path: str, source_path: str | None = None) -> None:
        """Tell the event bus (contents actions, by the request's user); never raises."""
        if self.events is None:
            return
        data = {"action": action, "path": path}
        if source_path is not None:
            data["source_path"] = source_path
        try:
            self.events.emit(CONTENTS_EVENTS, data)
        except Exception:
            log.exception("could not emit a contents event for %r", path)

    def add_observer(self, observer: ContentsObserver) -> None:
        """See ``ContentsService.add_observer``."""
        self.observers.append(observer)

    async def _notify(self, change: ContentsChange) -> None:
        for observer in self.observers:
            try:
                await observer(change)
            except Exception:
                log.exception("a contents observer failed on %s", change)

    # -- moving and deleting ---------------------------------------------------------------

    async def rename(self, path: str, new_path: str) -> Model:
        """See ``ContentsService.rename``."""
        source = await self._run(self.paths.resolve_entry, path, Access.WRITE, "rename")
        target = await self._run(self.paths.resolve_entry, new_path, Access.WRITE, "rename to")
        if source.is_root:
            raise BadRequest("cannot rename the root directory")
        if target.is_root:
            raise FileExists("the root directory already exists")
        async with self.locks.hold(source.os_path, target.os_path):
            model = await self._run(self._rename, source, target)
        await self._notify(ContentsChange("renamed", source.api, target.api))
        self._emit("rename", target.api, source.api)
        return model

    def _rename(self, source: ResolvedPath, target: ResolvedPath) -> Model:
        name, new_name = source.name_on_disk, target.name_on_disk
        with (
            os_errors(source.api, "rename"),
            self.paths.parent(source) as old_dir,
            self.paths.parent(target) as new_dir,
        ):
            st = os.stat(name, dir_fd=old_dir, follow_symlinks=False)
            if source.api != target.api:
                if stat.S_ISLNK(st.st_mode):
                    self.paths.check_moved_link(
                        os.readlink(name, dir_fd=old_dir),
                        self.paths.where(new_dir) or os.path.dirname(target.os_path),
                        source.api,
                        target.api,
                    )
                self._move(source, target, old_dir, new_dir)
                if stat.S_ISREG(st.st_mode):
                    try:
                        self.checkpoints.rename_all(old_dir, name, new_dir, new_name, target.api)
                    except (OSError, HTTPError) as exc:  # the file moved: not fatal
                        log.warning("could not move the checkpoint of %r: %s", source.api, exc)
            with os_errors(target.api, "read"):
                return self.model(target, self._moved_stat(target, new_dir))

    def _moved_stat(self, target: ResolvedPath, new_dir: int) -> os.stat_result:
        """The ``stat`` a moved entry's model shows: a link's target when the caller may
        read through it, else the link itself shown as a file (its text's length, its own
        times), so moving one's link tells nothing of what it leads to."""
        name = target.name_on_disk
        st = os.stat(name, dir_fd=new_dir, follow_symlinks=False)
        if not stat.S_ISLNK(st.st_mode):
            return st
        judged = self.paths.link_target(
            new_dir, name, self.paths.where(new_dir) or os.path.dirname(target.os_path)
        )
        if judged is not None:
            return judged[0]
        times = ("st_atime", "st_mtime", "st_ctime", "st_atime_ns", "st_mtime_ns", "st_ctime_ns")
        return os.stat_result(
            (stat.S_IFREG | stat.S_IMODE(st.st_mode), *tuple(st)[1:]),
            {name: getattr(st, name) for name in times},
        )

    @staticmethod
    def _move(source: ResolvedPath, target: ResolvedPath, old_dir: int, new_dir: int) -> None:
        """Rename an entry between two open directories, never over an existing one."""
        name, new_name = source.name_on_disk, target.name_on_disk
        try:
            try:
                existing = os.stat(new_name, dir_fd=new_dir, follow_symlinks=False)
            except FileNotFoundError:
                existing = None
            moving = os.stat(name, dir_fd=old_dir, follow_symlinks=False)
            if existing is not None and (existing.st_dev, existing.st_ino) == (
                moving.st_dev,
                moving.st_ino,
            ):  # the same entry under another spelling (case-insensitive disks)
                os.rename(name, new_name, src_dir_fd=old_dir, dst_dir_fd=new_dir)
            else:
                rename_noreplace(name, new_name, src_dir_fd=old_dir, dst_dir_fd=new_dir)
        except FileExistsError:
            raise FileExists(f"File already exists: {target.api!r}") from None
        except OSError as exc:
            if exc.errno == errno.EINVAL:
                raise InvalidPath(
                    f"cannot move {source.api!r} into itself ({target.api!r})"
                ) from None
            if exc.errno != errno.EXDEV:
                raise
            try:  # another mount under the root
                move_across(old_dir, name, new_dir, new_name)
            except FileExistsError:
                raise FileExists(f"File already exists: {target.api!r}") from None

    async def delete(self, path: str) -> None:
        """See ``ContentsService.delete``."""
        resolved = await self._run(self.paths.resolve_entry, path, Access.WRITE, "delete")
        if resolved.is_root:
            raise BadRequest("cannot delete the root directory")
        async with self.locks.hold(resolved.os_path):
            await self._run(self._delete, resolved)
        await self._notify(ContentsChange("deleted", resolved.api))
        self._emit("delete", resolved.api)

    def _delete(self, resolved: ResolvedPath) -> None:
        api, name = resolved.api, resolved.name_on_disk
        with os_errors(api, "delete"), self.paths.parent(resolved) as directory:
            st = os.stat(name, dir_fd=directory, follow_symlinks=False)
            if self.trash is not None:
                self._to_trash(resolved, directory)
            elif stat.S_ISDIR(st.st_mode):
                folder = os.open(name, DIRECTORY_FLAGS | os.O_NOFOLLOW, dir_fd=directory)
                try:
                    names = os.listdir(folder)
                finally:
                    os.close(folder)
                non_empty = any(entry != CHECKPOINT_DIR for entry in names)
                if non_empty and not self.settings.always_delete_dir:
                    raise DirectoryNotEmpty(
                        f"directory {api!r} is not empty; turn on always_delete_dir (or "
                        "delete_to_trash) to delete it with its contents"
                    )
                shutil.rmtree(name, dir_fd=directory)
            else:
                os.unlink(name, dir_fd=directory)
            if stat.S_ISREG(st.st_mode):
                try:
                    self.checkpoints.delete_all(directory, name, api)
                except (OSError, HTTPError) as exc:  # the file is gone: not fatal
                    log.warning("could not delete the checkpoint of %r: %s", api, exc)

    def _to_trash(self, resolved: ResolvedPath, directory: int) -> None:
        """Hand the item to the trash, which takes a path: only while that path still leads
        into the checked directory (the trash walks it again, microseconds later)."""
        assert self.trash is not None
        seen = os.fstat(directory)
        now = os.stat(os.path.dirname(resolved.os_path))
        if (seen.st_dev, seen.st_ino) != (now.st_dev, now.st_ino):
            raise FileNotFound(f"file or directory {resolved.api!r} does not exist")
        try:
            self.trash(resolved.os_path)
        except OSError as exc:
            translated = translate(exc, resolved.api, "move to the trash")
            if translated is not None and not isinstance(translated, FileNotFound):
                raise translated from None
            # send2trash puts absolute paths in some messages: report only the reason
            why = exc.strerror or "the trash is not available for this location"
            raise TrashFailed(
                f"could not move {resolved.api!r} to the trash: {why}; set "
                "delete_to_trash = false to delete permanently"
            ) from None

    # -- checkpoints -----------------------------------------------------------------------

    async def create_checkpoint(self, path: str) -> Model:
        """See ``ContentsService.create_checkpoint``."""
        resolved = await self._run(self.paths.resolve, path, Access.READ)
        async with self.locks.hold(resolved.os_path):
            return await self._run(self._create_checkpoint, resolved)

    def _create_checkpoint(self, resolved: ResolvedPath) -> Model:
        with os_errors(resolved.api, "checkpoint"), self._file_directory(resolved) as directory:
            return self.checkpoints.create(directory, resolved.name_on_disk, resolved.api)

    async def list_checkpoints(self, path: str) -> list[Model]:
        """See ``ContentsService.list_checkpoints``."""
        resolved = await self._run(self.paths.resolve, path, Access.READ)
        return await self._run(self._list_checkpoints, resolved)

    def _list_checkpoints(self, resolved: ResolvedPath) -> list[Model]:
        with (
            os_errors(resolved.api, "read"),
            self._file_directory(resolved, Access.READ) as directory,
        ):
            return self.checkpoints.list(directory, resolved.name_on_disk, resolved.api)

    async def restore_checkpoint(self, path: str, checkpoint_id: str) -> None:
        """See ``ContentsService.restore_checkpoint``."""
        resolved = await self._run(self.paths.resolve, path, Access.READ)
        async with self.locks.hold(resolved.os_path):
            await self._run(self._restore_checkpoint, resolved, checkpoint_id)

    def _restore_checkpoint(self, resolved: ResolvedPath, checkpoint_id: str) -> None:
        with os_errors(resolved.api, "restore"), self._parent(resolved) as directory:
            self.checkpoints.restore(directory, resolved.name_on_disk, checkpoint_id, resolved.api)

    async def delete_checkpoint(self, path: str, checkpoint_id: str) -> None:
        """See ``ContentsService.delete_checkpoint``."""
        resolved = await self._run(self.paths.resolve, path, Access.READ)
        async with self.locks.hold(resolved.os_path):
            await self._run(self._delete_checkpoint, resolved, checkpoint_id)

    def _delete_checkpoint(self, resolved: ResolvedPath, checkpoint_id: str) -> None:
        with os_errors(resolved.api, "delete the checkpoint of"), self._parent(resolved) as fd:
            self.checkpoints.delete(fd, resolved.name_on_disk, checkpoint_id, resolved.api)

    @contextmanager
    def _parent(self, resolved: ResolvedPath, access: Access = Access.WRITE) -> Iterator[int]:
        """The open directory of a file that has checkpoints (the root has none)."""
        if resolved.is_root:
            raise BadType("'' is not a file; only files have checkpoints")
        with self.paths.parent(resolved, access) as directory:
            yield directory

    @contextmanager
    def _file_directory(
        self, resolved: ResolvedPath, access: Access = Access.WRITE
    ) -> Iterator[int]:
        """:meth:`_parent`, once the item is known to be a regular file."""
        with self._parent(resolved, access) as directory:
            st = os.stat(resolved.name_on_disk, dir_fd=directory)
            if not stat.S_ISREG(st.st_mode):
                raise BadType(f"{resolved.api!r} is not a file; only files have checkpoints")
            yield directory
