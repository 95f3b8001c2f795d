"""The ``zip`` job: a folder as a zip archive, written in zipfile's streaming mode.

The archive goes to a file through a write-only stream, so :mod:`zipfile` writes each entry's
sizes and CRC in a data descriptor after its data instead of seeking back: memory stays
constant (one chunk) whatever the size of the files, and the same code could write to a
socket. The archive is written under a temporary name and renamed only once complete and
consistent; a folder that changed meanwhile fails the job and the partial file is removed.
"""

from __future__ import annotations

import contextlib
import os
import time
import zipfile
from pathlib import Path
from typing import Any

from junction.plugins.jobs import folders
from junction.plugins.jobs.folders import (
    Entry,
    Reporter,
    Tree,
    check_unchanged,
    compare,
    copy_checked,
    open_file,
    snapshot,
)

__all__ = ["TooLarge", "UnportableName", "write_zip"]


class TooLarge(Exception):
    """The archive grew past the bytes its owner may still store."""


class UnportableName(Exception):
    """A name the archive cannot hold as it is: bytes that are not UTF-8, or a backslash,
    which unpacking tools on Windows read as a folder separator (a way out of the folder
    the archive is unpacked in)."""


def _check_names(entries: list[Entry]) -> None:
    for entry in entries:
        try:
            entry.name.encode("utf-8")
        except UnicodeEncodeError:
            raise UnportableName(f"cannot archive {entry.name!r}: its name is not UTF-8") from None
        if "\\" in entry.name:
            raise UnportableName(f"cannot archive {entry.name!r}: its name holds a backslash")


class _WriteOnly:
    """A write-only file: zipfile cannot seek it, so it writes in streaming mode."""

    def __init__(self, raw: Any, max_bytes: int | None = None) -> None:
        self._raw = raw
        self._left = max_bytes

    def write(self, data: bytes) -> int:
        if self._left is not None:
            self._left -= len(data)
            if self._left < 0:
                raise TooLarge("the archive would pass the owner's quota (jobs.max_bytes_per_user)")
        return int(self._raw.write(data))

    def flush(self) -> None:
        self._raw.flush()

    def close(self) -> None:
        """The caller closes the underlying file."""


def write_zip(
    folder: Path,
    target: Path,
    reporter: Reporter,
    *,
    include_hidden: bool,
    max_bytes: int | None = None,
) -> dict[str, Any]:
    """Archive ``folder`` into ``target`` (0600); returns the entry count and size.

    Runs in a worker thread. Raises ``FolderChanged``, ``TooDeep``, ``Cancelled`` or
    :class:`TooLarge` (past ``max_bytes``), after removing the partial archive, or
    ``OSError``. Files are read through descriptors (see :class:`~.folders.Tree`).
    """
    before = snapshot(folder, include_hidden=include_hidden)
    _check_names(before)
    reporter.total = sum(entry.size for entry in before)
    partial = target.with_name(target.name + ".partial")
    top = os.open(folder, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    sources = Tree(top)
    try:
        # Archives hold users' files: readable by the server's account alone.
        fd = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, 0o600)
        with os.fdopen(fd, "wb") as raw:
            with zipfile.ZipFile(
                _WriteOnly(raw, max_bytes), "w", zipfile.ZIP_DEFLATED, allowZip64=True
            ) as archive:
                for entry in before:
                    reporter.check()
                    folders.reached(entry)
                    if entry.is_dir:
                        archive.writestr(zipfile.ZipInfo(entry.name + "/"), b"")
                        continue
                    opened = open_file(sources, entry)
                    if opened is None:
                        continue  # no longer a regular file: the final comparison reports it
                    with os.fdopen(opened, "rb") as source:
                        info = os.fstat(opened)
                        check_unchanged(entry, info)
                        with archive.open(
                            _zip_info(entry.name, info), "w", force_zip64=entry.size >= 1 << 31
                        ) as sink:
                            copy_checked(source, sink, entry, reporter)
            compare(before, snapshot(folder, include_hidden=include_hidden))
        os.replace(partial, target)
    except BaseException:
        with contextlib.suppress(OSError):
            partial.unlink()
        raise
    finally:
        sources.close()
        os.close(top)
    return {"entries": len(before), "size": target.stat().st_size}


def _zip_info(name: str, info: os.stat_result) -> zipfile.ZipInfo:
    """The entry of a file opened for the archive, from its descriptor's ``fstat``."""
    made = zipfile.ZipInfo(name, time.localtime(info.st_mtime)[:6])
    made.external_attr = (info.st_mode & 0xFFFF) << 16
    made.file_size = info.st_size
    made.compress_type = zipfile.ZIP_DEFLATED
    return made
