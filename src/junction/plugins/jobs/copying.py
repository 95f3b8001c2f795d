"""The ``copy`` job: a folder copied to a new path, in chunks, consistent or not at all.

The copy is made in a hidden staging folder beside the destination and renamed into place
only when every file was copied unchanged; a failure or cancellation removes it.

Everything is reached through descriptors, never through a path a user could re-point: the
staging folder is made and opened relative to the destination's parent (and checked to be
the folder just made), every folder and file of the copy is made relative to its parent's
descriptor without following links, sources are read through their own descriptors, and
their mode, times and extended attributes are taken from those descriptors.
"""

from __future__ import annotations

import contextlib
import errno
import os
import shutil
import stat
from pathlib import Path
from typing import Any

from junction.plugins.jobs import folders
from junction.plugins.jobs.folders import (
    FolderChanged,
    Reporter,
    Tree,
    check_unchanged,
    compare,
    copy_checked,
    open_file,
    snapshot,
)

__all__ = ["copy_folder"]

_FOLDER = os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC
_NEW_FILE = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC
_XATTR_IGNORED = (errno.EPERM, errno.ENOTSUP, errno.ENODATA, errno.EINVAL, errno.EACCES)


def _same(info: os.stat_result, other: os.stat_result) -> bool:
    return (info.st_dev, info.st_ino) == (other.st_dev, other.st_ino)


def _copy_metadata(source: int, target: int) -> None:
    """Give the file ``target`` the times, extended attributes and mode of ``source``."""
    info = os.fstat(source)
    os.utime(target, ns=(info.st_atime_ns, info.st_mtime_ns))
    try:
        names = os.listxattr(source)
    except OSError as exc:
        if exc.errno not in _XATTR_IGNORED:
            raise
        names = []
    for name in names:
        try:
            os.setxattr(target, name, os.getxattr(source, name))
        except OSError as exc:
            if exc.errno not in _XATTR_IGNORED:
                raise
    os.fchmod(target, stat.S_IMODE(info.st_mode))


def _remove_staging(parent: int, name: str, made: os.stat_result) -> None:
    """Remove the staging folder, only if ``name`` still is it (links never followed)."""
    try:
        now = os.stat(name, dir_fd=parent, follow_symlinks=False)
    except OSError:
        return
    if _same(now, made):
        shutil.rmtree(name, ignore_errors=True, dir_fd=parent)


def copy_folder(
    folder: Path, destination: Path, reporter: Reporter, *, include_hidden: bool, job_id: str
) -> dict[str, Any]:
    """Copy ``folder`` to ``destination`` (which must not exist); returns the entry count.

    Runs in a worker thread. Raises ``FolderChanged``, ``TooDeep``, ``Cancelled`` or
    ``OSError``, after removing the partial copy; ``FileExistsError`` when the destination
    appeared meanwhile.
    """
    before = snapshot(folder, include_hidden=include_hidden)
    reporter.total = sum(entry.size for entry in before)
    name = destination.name
    staging = f".{name}.copy-{job_id}"
    parent = os.open(destination.parent, _FOLDER)
    try:
        source_top = os.open(folder, _FOLDER)
        try:
            os.mkdir(staging, dir_fd=parent)
            made = os.stat(staging, dir_fd=parent, follow_symlinks=False)
            try:
                _fill(parent, staging, made, source_top, before, reporter)
                compare(before, snapshot(folder, include_hidden=include_hidden))
                if not _same(os.stat(staging, dir_fd=parent, follow_symlinks=False), made):
                    raise FolderChanged("the copy's staging folder was moved or replaced")
                with contextlib.suppress(FileNotFoundError):
                    os.stat(name, dir_fd=parent, follow_symlinks=False)
                    raise FileExistsError(f"{name} appeared while the copy ran")
                os.rename(staging, name, src_dir_fd=parent, dst_dir_fd=parent)
            except BaseException:
                _remove_staging(parent, staging, made)
                raise
        finally:
            os.close(source_top)
    finally:
        os.close(parent)
    return {"entries": len(before), "size": reporter.done}


def _fill(
    parent: int,
    staging: str,
    made: os.stat_result,
    source_top: int,
    entries: list[folders.Entry],
    reporter: Reporter,
) -> None:
    """Copy ``entries`` from ``source_top`` into the staging folder just ``made``."""
    try:
        top = os.open(staging, _FOLDER | os.O_NOFOLLOW, dir_fd=parent)
    except OSError:
        raise FolderChanged("the copy's staging folder was moved or replaced") from None
    sources = Tree(source_top)
    targets = Tree(top)
    try:
        if not _same(os.fstat(top), made):
            raise FolderChanged("the copy's staging folder was moved or replaced")
        for entry in entries:
            reporter.check()
            folders.reached(entry)
            *parents, last = entry.name.split("/")
            try:
                into = targets.folder(parents)
            except OSError:
                raise FolderChanged(f"the copy of {entry.name} was moved or replaced") from None
            if entry.is_dir:
                os.mkdir(last, dir_fd=into)
                continue
            fd = open_file(sources, entry)
            if fd is None:
                continue  # no longer a regular file: the final comparison reports it
            with os.fdopen(fd, "rb") as source:
                check_unchanged(entry, os.fstat(fd))
                made_fd = os.open(last, _NEW_FILE, 0o600, dir_fd=into)
                with os.fdopen(made_fd, "wb") as sink:
                    copy_checked(source, sink, entry, reporter)
                    sink.flush()
                    _copy_metadata(fd, made_fd)
    finally:
        sources.close()
        targets.close()
        os.close(top)
