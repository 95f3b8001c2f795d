"""``/files/{path}``: raw file bytes, streamed from one open file.

The file is opened once and everything (length, ``ETag``, the bytes) comes from that open
file, so a save that replaces the file mid-download cannot mix two versions or make the
length lie. Bytes go out in 256 KiB blocks read in a worker thread; when the client goes
away the stream stops.

Headers: the guessed type (``text/plain; charset=utf-8`` for unknown text, sniffed from
the first 4 KiB; ``application/octet-stream`` otherwise), ``Content-Disposition:
attachment`` for ``?download=1`` and always for notebooks, ``Content-Security-Policy:
sandbox allow-scripts`` so an HTML or SVG file runs in an opaque origin and cannot reach
this server with the user's credentials, ``ETag``/``Last-Modified``, and single byte
ranges (``Range: bytes=a-b`` answered with 206, unsatisfiable with 416).
"""

from __future__ import annotations

import mimetypes
import os
import re
from email.utils import formatdate
from urllib.parse import quote

import anyio
from starlette.datastructures import Headers
from starlette.responses import Response
from starlette.types import Message, Receive, Scope, Send

from junction.plugins.contents.oserrors import os_errors
from junction.plugins.contents.service import OpenedFile

__all__ = ["FILES_CSP", "FileStream", "media_type_for"]

FILES_CSP = "sandbox allow-scripts; frame-ancestors 'self'"
STREAM_BLOCK = 256 * 1024
SNIFF_BYTES = 4096
_RANGE = re.compile(r"bytes=(\d*)-(\d*)")


def _looks_like_text(head: bytes) -> bool:
    if b"\x00" in head:
        return False
    try:
        head.decode("utf-8")
    except UnicodeDecodeError as exc:  # a character cut at the end of the sample is fine
        return exc.start >= len(head) - 3 and exc.reason == "unexpected end of data"
    return True


def media_type_for(opened: OpenedFile) -> str:
    """The ``Content-Type`` of a raw file (blocking: may read its first 4 KiB); raises the
    contents errors of a file that cannot be read (``oserrors.py``)."""
    lowered = opened.name.lower()
    if lowered.endswith(".ipynb"):
        return "application/x-ipynb+json"
    guessed = mimetypes.guess_type(opened.name)[0]
    if lowered.endswith((".gz", ".tgz")):
        return "application/gzip"  # RFC 6713: the encoding, not the content, is the type
    if guessed is not None:
        return guessed
    with os_errors(opened.path, "read"):
        head = os.pread(opened.file.fileno(), SNIFF_BYTES, 0)
    return "text/plain; charset=utf-8" if _looks_like_text(head) else "application/octet-stream"


def _parse_range(header: str, size: int) -> tuple[int, int] | bool | None:
    """A single byte range as ``(first, last)``; None to ignore the header, False if
    unsatisfiable."""
    match = _RANGE.fullmatch(header.strip())
    if match is None:
        return None  # several ranges or another unit: answer with the whole file
    first, last = match.groups()
    if not first and not last:
        return None
    if not first:
        length = int(last)
        if length == 0:
            return False
        return max(size - length, 0), size - 1
    start = int(first)
    end = int(last) if last else size - 1
    if start >= size or end < start:
        return False
    return start, min(end, size - 1)


class FileStream(Response):
    """A response streaming an :class:`OpenedFile` (which it closes)."""

    def __init__(self, opened: OpenedFile, *, media_type: str, download: bool, head: bool) -> None:
        self.opened = opened
        self.head = head
        st = opened.stat
        headers = {
            "content-security-policy": FILES_CSP,
            "accept-ranges": "bytes",
            "last-modified": formatdate(st.st_mtime, usegmt=True),
            "etag": f'"{st.st_mtime_ns:x}-{st.st_size:x}-{st.st_ino:x}"',
            "cache-control": "no-cache",
            "content-type": media_type,
        }
        if download:
            encoded = quote(opened.name)
            headers["content-disposition"] = (
                f'attachment; filename="{opened.name}"'
                if encoded == opened.name
                else f"attachment; filename*=utf-8''{encoded}"
            )
        super().__init__(status_code=200, headers=headers)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        try:
            await self._respond(scope, receive, send)
        finally:
            self.opened.file.close()

    async def _respond(self, scope: Scope, receive: Receive, send: Send) -> None:
        request_headers = Headers(scope=scope)
        size = self.opened.stat.st_size
        etag = self.headers["etag"]
        if etag in request_headers.get("if-none-match", ""):
            self.status_code = 304
            await self._start(send, None)
            await send({"type": "http.response.body", "body": b""})
            return
        first, last = 0, size - 1
        wanted = request_headers.get("range")
        if_range = request_headers.get("if-range")
        if wanted and (if_range is None or if_range in (etag, self.headers["last-modified"])):
            parsed = _parse_range(wanted, size)
            if parsed is False:
                self.status_code = 416
                self.headers["content-range"] = f"bytes */{size}"
                await self._start(send, 0)
                await send({"type": "http.response.body", "body": b""})
                return
            if isinstance(parsed, tuple):
                first, last = parsed
                self.status_code = 206
                self.headers["content-range"] = f"bytes {first}-{last}/{size}"
        length = max(last - first + 1, 0)
        await self._start(send, length)
        if self.head or length == 0:
            await send({"type": "http.response.body", "body": b""})
            return
        async with anyio.create_task_group() as group:

            async def watch_disconnect() -> None:
                while True:
                    message: Message = await receive()
                    if message["type"] == "http.disconnect":
                        group.cancel_scope.cancel()
                        return

            group.start_soon(watch_disconnect)
            await self._stream(send, first, length)
            group.cancel_scope.cancel()

    async def _start(self, send: Send, length: int | None) -> None:
        if length is not None:
            self.headers["content-length"] = str(length)
        elif "content-length" in self.headers:
            del self.headers["content-length"]
        await send(
            {"type": "http.response.start", "status": self.status_code, "headers": self.raw_headers}
        )

    async def _stream(self, send: Send, position: int, remaining: int) -> None:
        fd = self.opened.file.fileno()
        while remaining > 0:
            block = await anyio.to_thread.run_sync(
                os.pread, fd, min(STREAM_BLOCK, remaining), position
            )
            if not block:  # the file shrank under us: end early rather than pad
                break
            position += len(block)
            remaining -= len(block)
            await send({"type": "http.response.body", "body": block, "more_body": remaining > 0})
        if remaining > 0:
            raise RuntimeError("file truncated while streaming")
