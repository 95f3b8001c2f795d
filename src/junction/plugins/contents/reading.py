"""Reading file bytes for contents models: whole files, byte ranges, hashes.

Blocking; runs in worker threads. A whole-file read is bounded by ``max_read_mb`` (larger
files are read in ranges or downloaded from ``/files``). A ranged read (``offset`` and
``length`` in bytes) returns that span; as text it is trimmed to whole UTF-8 characters
(leading continuation bytes skipped, a trailing incomplete character dropped) and the
model's ``range`` reports the span actually returned, so the next read starts at
``offset + length``. Hashes always cover the whole file and are computed while streaming
it in 1 MiB blocks, bounded by the same limit as whole-file reads.
"""

from __future__ import annotations

import base64
import hashlib
import os
import stat
from dataclasses import dataclass
from typing import BinaryIO

from junction.plugins.contents.atomic import BLOCK
from junction.plugins.contents.paths import Access, RootPaths
from junction.plugins.contents.service import BadFormat, BadType, FileTooLarge

__all__ = [
    "HASH_ALGORITHM",
    "READ_FLAGS",
    "FileBytes",
    "decode",
    "hash_file",
    "open_regular",
    "read_bytes",
    "regular_file",
]

HASH_ALGORITHM = "sha256"
MIB = 1 << 20
READ_FLAGS = os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC
"""Files are opened non-blocking, so a FIFO cannot hang a worker thread waiting for a
writer (the flag means nothing to regular files)."""


def open_regular(paths: RootPaths, os_path: str, api: str) -> BinaryIO:
    """Open a regular file for reading, checked to be inside the root where it really is.

    Anything else (a FIFO, a device, a directory) is BadType.
    """
    return regular_file(paths.open(os_path, READ_FLAGS, api, Access.READ, verb="read"), api)


def regular_file(fd: int, api: str) -> BinaryIO:
    """Wrap a descriptor opened for reading if it is a regular file; else close it and
    raise BadType."""
    try:
        st = os.fstat(fd)
        if stat.S_ISDIR(st.st_mode):
            raise BadType(f"{api!r} is a directory")
        if not stat.S_ISREG(st.st_mode):
            raise BadType(f"{api!r} is not a regular file")
    except BaseException:
        os.close(fd)
        raise
    return os.fdopen(fd, "rb")


@dataclass(frozen=True, slots=True)
class FileBytes:
    """Bytes read from a file: ``offset`` is where they start, ``whole`` if that is all."""

    data: bytes
    offset: int
    whole: bool


def _describe_size(size: int) -> str:
    return f"{size / MIB:.1f} MiB"


def read_bytes(
    fd: int, size: int, *, offset: int | None, length: int | None, max_bytes: int, api: str
) -> FileBytes:
    """Read the whole file (``offset`` and ``length`` None) or a byte range of it."""
    if offset is None and length is None:
        if size > max_bytes:
            raise FileTooLarge(
                f"{api!r} is {_describe_size(size)}, above the {max_bytes // MIB} MiB limit "
                "for whole-file reads; read it in ranges (offset, length) or from /files"
            )
        chunks = []
        total = 0
        while True:
            chunk = os.read(fd, BLOCK)
            if not chunk:
                break
            total += len(chunk)
            if total > max_bytes:  # grew while we read
                raise FileTooLarge(f"{api!r} grew above the whole-file read limit")
            chunks.append(chunk)
        return FileBytes(b"".join(chunks), 0, whole=True)
    start = offset or 0
    span = length if length is not None else max(size - start, 0)
    if span > max_bytes:
        raise FileTooLarge(
            f"a range of {_describe_size(span)} is above the {max_bytes // MIB} MiB limit; "
            "ask for a smaller length"
        )
    # Nothing to read at or past the end (and pread refuses offsets near 2**63).
    data = os.pread(fd, span, start) if span and start < size else b""
    return FileBytes(data, start, whole=start == 0 and len(data) >= size)


def _sequence_length(lead: int) -> int:
    """How many bytes a UTF-8 character starting with ``lead`` takes."""
    if lead < 0x80:
        return 1
    if lead < 0xE0:
        return 2
    if lead < 0xF0:
        return 3
    return 4


def _utf8_span(data: bytes, at_start: bool, at_end: bool) -> tuple[int, int]:
    """The slice of ``data`` holding whole UTF-8 characters only."""
    start = 0
    if not at_start:
        while start < min(3, len(data)) and data[start] & 0xC0 == 0x80:
            start += 1
    end = len(data)
    if not at_end:
        back = end - 1
        while back >= max(start, end - 4) and data[back] & 0xC0 == 0x80:
            back -= 1
        if back >= start and end - back < _sequence_length(data[back]):
            end = back
    return start, end


def decode(
    chunk: FileBytes, size: int, format: str | None, api: str, *, ranged: bool
) -> tuple[str, str, int, int]:
    """Encode bytes as text or base64: returns ``(content, format, offset, length)``.

    ``format`` None tries text and falls back to base64, as Jupyter does.
    """
    data, offset = chunk.data, chunk.offset
    if format in (None, "text"):
        start, end = 0, len(data)
        if ranged:
            start, end = _utf8_span(data, offset == 0, offset + len(data) >= size)
        try:
            text = data[start:end].decode("utf-8")
        except UnicodeDecodeError:
            if format == "text":
                raise BadFormat(f"{api!r} is not UTF-8 encoded") from None
        else:
            return text, "text", offset + start, end - start
    return base64.b64encode(data).decode("ascii"), "base64", offset, len(data)


def hash_file(
    fd: int, size: int, *, max_bytes: int, api: str, data: FileBytes | None = None
) -> str:
    """The hex digest of the whole file (reusing ``data`` when it is the whole file).

    Bounded like a whole-file read: a file whose ``stat`` ``size`` is above ``max_bytes``,
    or that yields more than that (one growing while it is read, or a procfs file that
    reports size 0 and streams on), raises FileTooLarge once one block more than that was
    read.
    """
    if data is not None and data.whole:
        return hashlib.sha256(data.data).hexdigest()
    if size > max_bytes:
        raise FileTooLarge(
            f"{api!r} is {_describe_size(size)}, above the {max_bytes // MIB} MiB limit "
            "for hashes (they cover the whole file); download it from /files to hash it"
        )
    digest = hashlib.sha256()
    position = 0
    while True:
        block = os.pread(fd, BLOCK, position)
        if not block:
            break
        position += len(block)
        if position > max_bytes:
            raise FileTooLarge(f"{api!r} grew above the {max_bytes // MIB} MiB limit for hashes")
        digest.update(block)
    return digest.hexdigest()
