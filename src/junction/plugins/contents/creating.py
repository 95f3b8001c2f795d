"""New items: untitled files, notebooks and folders, and copies.

Names follow Jupyter's rules so clients see the names they expect:

- untitled: ``untitled`` + ext, ``Untitled.ipynb``, ``Untitled Folder``; when taken, a
  number goes before the extension (``untitled1.txt``, ``Untitled Folder 1``);
- copies: the source name without an earlier ``-CopyN``, then ``-Copy1``, ``-Copy2``...
  before the extension (the first dot, or the last one for ``.ipynb``); a copy into another
  folder keeps the plain name when it is free.

Every candidate name is claimed atomically (``O_EXCL``, ``mkdir``, or ``link`` of an already
written file), so two clients creating at once get two names, never one file. Folder
copies are built under a hidden temporary name and renamed into place when complete.
All of it happens inside the open, checked target directory (and, for folder copies, the
open source folder; see ``trees.py``), never by re-walking a path.

Blocking; runs in worker threads.
"""

from __future__ import annotations

import contextlib
import os
import re
import secrets
import shutil
import stat
from collections.abc import Iterator
from typing import TYPE_CHECKING

from junction.errors import BadRequest
from junction.plugins.contents.atomic import TEMP_PREFIX, copy_into
from junction.plugins.contents.models import Model
from junction.plugins.contents.notebooks import new_notebook_bytes
from junction.plugins.contents.oserrors import os_errors
from junction.plugins.contents.paths import Access, ResolvedPath, split_api_path
from junction.plugins.contents.reading import open_regular
from junction.plugins.contents.service import FileNotFound, FileTooLarge, InvalidPath
from junction.plugins.contents.trees import copy_tree, tree_size

if TYPE_CHECKING:
    from junction.plugins.contents.filesystem import LocalContents

__all__ = ["Creator", "candidate_names"]

COPY_PATTERN = re.compile(r"-Copy\d*\.")
MAX_CANDIDATES = 100_000
MIB = 1 << 20
NEW_FILE_FLAGS = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC


def candidate_names(name: str, insert: str) -> Iterator[str]:
    """``name``, then ``name`` with ``insert`` and 1, 2, ... before its extension."""
    base, dot, ext = name.rpartition(".")
    if ext != "ipynb":
        base, dot, ext = name.partition(".")
    suffix = dot + ext
    yield name
    for number in range(1, MAX_CANDIDATES):
        yield f"{base}{insert}{number}{suffix}"


class Creator:
    """Creates untitled items and copies for a :class:`LocalContents`."""

    def __init__(self, contents: LocalContents) -> None:
        self.contents = contents
        self.paths = contents.paths
        self.settings = contents.settings

    def _directory(self, path: str, verb: str) -> ResolvedPath:
        """Resolve a directory that receives a new item."""
        resolved = self.paths.resolve(path, Access.WRITE, verb)
        with os_errors(resolved.api, verb):
            try:
                st = os.stat(resolved.os_path)
            except FileNotFoundError:
                raise FileNotFound(f"directory {resolved.api!r} does not exist") from None
        if not stat.S_ISDIR(st.st_mode):
            raise BadRequest("Cannot POST to files, use PUT instead.")
        return resolved

    def _child(self, directory: ResolvedPath, name: str) -> ResolvedPath:
        parts = split_api_path(name)
        if len(parts) != 1 or parts[0] != name:
            raise InvalidPath(f"invalid name {name!r}")
        api = f"{directory.api}/{name}" if directory.api else name
        self.paths.check_hidden(api, Access.WRITE, "create")
        return ResolvedPath(api=api, os_path=os.path.join(directory.os_path, name))

    def new_untitled(self, path: str, kind: str, ext: str) -> Model:
        """Create an untitled item in directory ``path``; see the module docstring."""
        directory = self._directory(path, "create files in")
        kind = kind or ("notebook" if ext == ".ipynb" else "file")
        insert = ""
        if kind == "directory":
            first, insert = self.settings.untitled_directory + ext, " "
        elif kind == "notebook":
            first = self.settings.untitled_notebook + ".ipynb"
        else:
            first = self.settings.untitled_file + ext
        with (
            os_errors(directory.api, "create files in"),
            self.paths.directory(directory.os_path, directory.api) as fd,
        ):
            if kind == "notebook":
                with self.contents.atomic_file(fd) as notebook:
                    notebook.write(new_notebook_bytes())
                    for name in candidate_names(first, insert):
                        child = self._child(directory, name)
                        try:
                            st = notebook.commit(name, exclusive=True)
                        except FileExistsError:
                            continue
                        return self.contents.model(child, st)
            for name in candidate_names(first, insert):
                child = self._child(directory, name)
                try:
                    if kind == "directory":
                        os.mkdir(name, dir_fd=fd)
                        st = os.stat(name, dir_fd=fd, follow_symlinks=False)
                    else:
                        created = os.open(name, NEW_FILE_FLAGS, 0o666, dir_fd=fd)
                        st = os.fstat(created)
                        os.close(created)
                except FileExistsError:
                    continue
                return self.contents.model(child, st)
        raise BadRequest(f"no free name for a new {kind} in {directory.api!r}")

    def copy(self, from_path: str, to_dir: str) -> Model:
        """Copy a file or folder into directory ``to_dir``; see the module docstring."""
        source = self.paths.resolve(from_path, Access.WRITE, "copy")
        if source.is_root:
            raise BadRequest("cannot copy the root directory")
        with os_errors(source.api, "copy"):
            st = os.stat(source.os_path)
        directory = self._directory(to_dir, "copy into")
        name = COPY_PATTERN.sub(".", source.name)
        with (
            os_errors(directory.api, "copy into"),
            self.paths.directory(directory.os_path, directory.api) as fd,
        ):
            if stat.S_ISDIR(st.st_mode):
                return self._copy_folder(source, directory, fd, name)
            with (
                open_regular(self.paths, source.os_path, source.api) as handle,
                self.contents.atomic_file(fd) as copy,
            ):
                copy_into(copy, handle.fileno())
                for candidate in candidate_names(name, "-Copy"):
                    child = self._child(directory, candidate)
                    try:
                        committed = copy.commit(candidate, exclusive=True)
                    except FileExistsError:
                        continue
                    return self.contents.model(child, committed)
        raise BadRequest(f"no free name for a copy of {source.api!r}")

    def _copy_folder(
        self, source: ResolvedPath, directory: ResolvedPath, fd: int, name: str
    ) -> Model:
        with self.paths.directory(source.os_path, source.api, Access.READ) as source_fd:
            origin = self.paths.where(source_fd) or source.os_path
            into = self.paths.where(fd) or directory.os_path
            if into == origin or into.startswith(origin + os.sep):
                raise BadRequest(f"cannot copy {source.api!r} into itself")
            self._check_folder_size(source_fd, source)
            for candidate in candidate_names(name, "-Copy"):
                child = self._child(directory, candidate)
                try:
                    os.mkdir(candidate, dir_fd=fd)  # claims the name; replaced by the copy
                except FileExistsError:
                    continue
                temp = TEMP_PREFIX + secrets.token_hex(8)
                try:
                    copy_tree(source_fd, fd, temp)
                    os.rename(temp, candidate, src_dir_fd=fd, dst_dir_fd=fd)
                except BaseException:
                    shutil.rmtree(temp, ignore_errors=True, dir_fd=fd)
                    with contextlib.suppress(OSError):
                        os.rmdir(candidate, dir_fd=fd)
                    raise
                return self.contents.model(child, os.stat(candidate, dir_fd=fd))
        raise BadRequest(f"no free name for a copy of {source.api!r}")

    def _check_folder_size(self, source_fd: int, source: ResolvedPath) -> None:
        limit = self.settings.max_copy_folder_size_mb * MIB
        if tree_size(source_fd, limit) > limit:
            raise FileTooLarge(
                f"cannot copy folders larger than "
                f"{self.settings.max_copy_folder_size_mb} MB; {source.api!r} is larger"
            )
