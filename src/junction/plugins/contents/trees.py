"""Folder trees worked on through directory descriptors: size, copy, move across devices.

Every name is opened relative to its already open parent directory and never followed
(``O_NOFOLLOW``, ``follow_symlinks=False``), so a tree whose folders are renamed or
swapped for links while it is walked cannot lead the walk out of the tree: a folder
replaced by a link is refused (``ELOOP``), links inside are copied as links.

Blocking; runs in worker threads. Open descriptors grow with the tree's depth only (two
per level while copying).
"""

from __future__ import annotations

import contextlib
import os
import shutil
import stat
from collections.abc import Iterator

from junction.plugins.contents.atomic import BLOCK
from junction.plugins.contents.paths import DIRECTORY_FLAGS
from junction.plugins.contents.service import BadType

__all__ = ["copy_file_at", "copy_tree", "move_across", "tree_size"]

_NO_FOLLOW_DIR = DIRECTORY_FLAGS | os.O_NOFOLLOW


def tree_size(dir_fd: int, limit: int) -> int:
    """The total size of the files below an open directory, counted until it passes
    ``limit`` (links count as links; entries vanishing meanwhile are skipped)."""
    total = 0
    for _, _, files, fd in os.fwalk(".", dir_fd=dir_fd):
        for name in files:
            try:
                total += os.stat(name, dir_fd=fd, follow_symlinks=False).st_size
            except OSError:
                continue
            if total > limit:
                return total
    return total


def copy_file_at(src_dir_fd: int, name: str, dst_dir_fd: int, new_name: str, mode: int) -> bool:
    """Copy regular file ``name`` to ``new_name`` with ``mode``; False if it was skipped.

    ``new_name`` must not exist (FileExistsError); a failed copy is removed. A source
    replaced meanwhile by something other than a regular file is skipped.
    """
    source = os.open(
        name, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC, dir_fd=src_dir_fd
    )
    try:
        if not stat.S_ISREG(os.fstat(source).st_mode):
            return False
        target = os.open(
            new_name,
            os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC,
            0o600,
            dir_fd=dst_dir_fd,
        )
        try:
            while block := os.read(source, BLOCK):
                view = memoryview(block)
                while view:
                    view = view[os.write(target, view) :]
            os.fchmod(target, mode)
        except BaseException:
            with contextlib.suppress(OSError):
                os.unlink(new_name, dir_fd=dst_dir_fd)
            raise
        finally:
            os.close(target)
    finally:
        os.close(source)
    return True


def copy_tree(source_fd: int, dst_dir_fd: int, name: str, *, mode: int | None = None) -> None:
    """Copy the open directory ``source_fd`` as new folder ``name`` in ``dst_dir_fd``.

    Links stay links, permission bits are kept (set once a folder is filled, so read-only
    folders copy too); the new top folder gets ``mode`` if given, else the default one.
    Sockets, pipes and devices are skipped. The first error is raised as the OSError it
    is (a full disk reads as ENOSPC), after the partial copy is removed; if ``name``
    exists, FileExistsError and nothing is touched.
    """
    os.mkdir(name, 0o700 if mode is not None else 0o777, dir_fd=dst_dir_fd)
    try:
        _fill(source_fd, dst_dir_fd, name, mode)
    except BaseException:
        shutil.rmtree(name, ignore_errors=True, dir_fd=dst_dir_fd)
        raise


def _fill(source_fd: int, dst_dir_fd: int, name: str, mode: int | None) -> None:
    """Copy the entries of ``source_fd`` into the new, empty folder ``name``."""
    top = os.open(name, _NO_FOLLOW_DIR, dir_fd=dst_dir_fd)
    stack: list[tuple[int, int, Iterator[str], int | None]] = []
    try:
        stack.append((os.dup(source_fd), top, iter(os.listdir(source_fd)), mode))
    except BaseException:
        os.close(top)
        raise
    try:
        while stack:
            src, dst, names, folder_mode = stack[-1]
            entry = next(names, None)
            if entry is None:
                stack.pop()
                try:
                    if folder_mode is not None:
                        os.fchmod(dst, folder_mode)
                finally:
                    os.close(src)
                    os.close(dst)
                continue
            st = os.stat(entry, dir_fd=src, follow_symlinks=False)
            if stat.S_ISLNK(st.st_mode):
                os.symlink(os.readlink(entry, dir_fd=src), entry, dir_fd=dst)
            elif stat.S_ISREG(st.st_mode):
                copy_file_at(src, entry, dst, entry, stat.S_IMODE(st.st_mode))
            elif stat.S_ISDIR(st.st_mode):
                os.mkdir(entry, 0o700, dir_fd=dst)
                child = os.open(entry, _NO_FOLLOW_DIR, dir_fd=src)
                try:
                    copy = os.open(entry, _NO_FOLLOW_DIR, dir_fd=dst)
                except BaseException:
                    os.close(child)
                    raise
                stack.append((child, copy, iter(os.listdir(child)), stat.S_IMODE(st.st_mode)))
    finally:
        for src, dst, _, _ in stack:
            os.close(src)
            os.close(dst)


def move_across(src_dir_fd: int, name: str, dst_dir_fd: int, new_name: str) -> None:
    """Move ``name`` to ``new_name`` across file systems: copy, then remove the original.

    For the rare folder of the root that is another mount. ``new_name`` must not exist
    (FileExistsError); on failure the original stays and no partial copy is left.
    """
    st = os.stat(name, dir_fd=src_dir_fd, follow_symlinks=False)
    mode = stat.S_IMODE(st.st_mode)
    if stat.S_ISLNK(st.st_mode):
        os.symlink(os.readlink(name, dir_fd=src_dir_fd), new_name, dir_fd=dst_dir_fd)
        os.unlink(name, dir_fd=src_dir_fd)
    elif stat.S_ISDIR(st.st_mode):
        source = os.open(name, _NO_FOLLOW_DIR, dir_fd=src_dir_fd)
        try:
            copy_tree(source, dst_dir_fd, new_name, mode=mode)
        finally:
            os.close(source)
        shutil.rmtree(name, dir_fd=src_dir_fd)
    elif stat.S_ISREG(st.st_mode):
        if copy_file_at(src_dir_fd, name, dst_dir_fd, new_name, mode):
            os.unlink(name, dir_fd=src_dir_fd)
    else:
        raise BadType("sockets, pipes and devices cannot be moved to another file system")
