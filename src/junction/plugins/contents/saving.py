"""Saving: whole models and chunked uploads, atomically, one writer per path at a time.

A save resolves its path, takes the path's lock, opens the target's directory (checked
where it really is: directories may have been renamed while the save waited for the
lock) and writes there through an
:class:`~junction.plugins.contents.atomic.AtomicFile`: the previous file stays whole until
the new one is complete and flushed, then the new one replaces it in one rename. A file
that is replaced keeps its permission bits; a path that is a link inside the root is
written through (the link stays a link). Notebooks are validated before anything is
written. Chunked uploads keep their anonymous file between requests (``uploads.py``) and
put it in place at the last chunk.

Status: :class:`SaveResult.created` is True when the request created the file (201) and
False when it replaced one or only appended an upload chunk (200).
"""

from __future__ import annotations

import logging
import os
import stat
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, TypeVar

import anyio

from junction.errors import BadRequest
from junction.plugins.contents.models import SaveRequest
from junction.plugins.contents.notebooks import notebook_bytes, notebook_from_bytes
from junction.plugins.contents.oserrors import file_bytes, os_errors
from junction.plugins.contents.paths import Access, ResolvedPath
from junction.plugins.contents.service import (
    BadType,
    InvalidContent,
    SaveResult,
    UploadOutOfOrder,
)
from junction.plugins.contents.uploads import Upload

if TYPE_CHECKING:
    from junction.plugins.contents.filesystem import LocalContents

__all__ = ["Saver"]

log = logging.getLogger("junction.contents")

T = TypeVar("T")
FILE_TYPES = frozenset({"file", "notebook", "directory"})


async def _run(func: Callable[..., T], *args: Any) -> T:
    return await anyio.to_thread.run_sync(func, *args)


class Saver:
    """Saves models and upload chunks for a :class:`LocalContents`."""

    def __init__(self, contents: LocalContents) -> None:
        self.contents = contents

    async def save(self, path: str, request: SaveRequest) -> SaveResult:
        """Save a model, or one chunk of an upload, at ``path`` (see the module docstring)."""
        if request.copy_from:
            raise BadRequest("Cannot copy with PUT, only POST")
        if request.path:
            self.contents.paths.check_hidden(request.path, Access.WRITE, "save")
        resolved = await _run(self.contents.paths.resolve, path, Access.WRITE, "save")
        if resolved.is_root:
            raise BadRequest("cannot save over the root directory")
        if request.type is None:
            raise InvalidContent("No file type provided")
        kind = request.type if request.type in FILE_TYPES else "file"
        self._expire_uploads()
        async with self.contents.locks.hold(resolved.os_path):
            if request.chunk is not None:
                return await self._save_chunk(resolved, kind, request)
            return await _run(self._save_whole, resolved, kind, request)

    def _save_whole(self, resolved: ResolvedPath, kind: str, request: SaveRequest) -> SaveResult:
        api = resolved.api
        name = resolved.name_on_disk
        trust = self.contents.trust if kind == "notebook" else None
        sign = False
        if kind != "directory":
            if request.content is None:
                raise InvalidContent("No file content provided")
            if kind == "notebook":
                data = notebook_bytes(request.content, api)
                sign = trust is not None and trust.signable(request.content)
            else:
                data = file_bytes(request.format, request.content, api)
        with os_errors(api, "save"), self.contents.paths.parent(resolved) as directory:
            if kind == "directory":
                try:
                    os.mkdir(name, dir_fd=directory)
                    created = True
                except FileExistsError:
                    created = False
                # Not followed: the name was no link when resolved, and one put there
                # since may lead anywhere (its target's times are not this model's).
                st = os.stat(name, dir_fd=directory, follow_symlinks=False)
                if not stat.S_ISDIR(st.st_mode):
                    raise BadType(f"{api!r} exists and is not a directory")
                return SaveResult(self.contents.model(resolved, st), created)
            mode, created = self._target_state(directory, resolved)
            with self.contents.atomic_file(directory) as target:
                target.write(data)
                st = target.commit(name, mode=mode)
            if sign and trust is not None:
                # Sign what a later read sees: the bytes written, parsed as reads parse them.
                trust.sign(notebook_from_bytes(data, api))
            return SaveResult(self.contents.model(resolved, st), created)

    def _target_state(self, directory: int, resolved: ResolvedPath) -> tuple[int | None, bool]:
        """The mode to keep for a file about to be written, and whether it is new."""
        try:
            st = os.stat(resolved.name_on_disk, dir_fd=directory)
        except FileNotFoundError:
            return None, True
        if stat.S_ISDIR(st.st_mode):
            raise BadType(f"{resolved.api!r} is a directory")
        return stat.S_IMODE(st.st_mode), False

    async def _save_chunk(
        self, resolved: ResolvedPath, kind: str, request: SaveRequest
    ) -> SaveResult:
        api, key, chunk = resolved.api, resolved.os_path, request.chunk
        assert chunk is not None
        if kind != "file":
            raise InvalidContent(f'File type "{kind}" is not supported for large file transfer')
        if request.content is None:
            raise InvalidContent("No file content provided")
        if chunk == 0 or chunk < -1:
            raise UploadOutOfOrder("chunk must be 1, 2, 3, ... or -1 for the last one")
        data = await _run(file_bytes, request.format, request.content, api)
        upload = self.contents.uploads.get(key)
        if chunk == 1:
            upload = await _run(self._begin_upload, resolved)
            self.contents.uploads.start(key, upload)
        elif upload is None:
            raise UploadOutOfOrder(f"no upload of {api!r} is in progress; send chunk 1 first")
        elif chunk not in (-1, upload.next_chunk):
            raise UploadOutOfOrder(
                f"chunk {chunk} of {api!r} does not follow chunk {upload.next_chunk - 1}; "
                "start again with chunk 1"
            )
        try:
            with os_errors(api, "save"):
                await _run(upload.file.write, data)
                if chunk == -1:
                    self.contents.uploads.finish(key)
                    st = await _run(self._commit_upload, resolved, upload)
                    return SaveResult(self.contents.model(resolved, st), upload.created)
        except BaseException:
            self.contents.uploads.discard(key)
            upload.file.discard()
            raise
        upload.next_chunk = chunk + 1
        upload.touched = time.monotonic()
        partial = self.contents.model(resolved, await _run(os.fstat, upload.file.fd))
        partial["type"] = "file"
        return SaveResult(partial, created=False)

    def _begin_upload(self, resolved: ResolvedPath) -> Upload:
        with os_errors(resolved.api, "save"), self.contents.paths.parent(resolved) as directory:
            mode, created = self._target_state(directory, resolved)
            return Upload(file=self.contents.atomic_file(directory), created=created, mode=mode)

    def _commit_upload(self, resolved: ResolvedPath, upload: Upload) -> os.stat_result:
        try:
            return upload.file.commit(resolved.name_on_disk, mode=upload.mode)
        finally:
            upload.file.discard()

    def _expire_uploads(self) -> None:
        for key in self.contents.uploads.expired():
            if not self.contents.locks.busy(key):
                log.info("discarding an upload idle for %.0f s", self.contents.uploads.idle_timeout)
                self.contents.uploads.discard(key)
