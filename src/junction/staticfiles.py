"""Serving installed files (UI bundles, extensions, favicons): lookup, types, caching.

Files whose names carry a content hash (``main.efd36b46f3b45eb8.js``,
``remoteEntry.5cbb9d2323598fbda535.js``, ``0031b1860ea4ad75.woff``) never change under that
name, so browsers may keep them for a year without asking again. Everything else
(``package.json``, ``style.js``, theme CSS) is ``no-cache``: the browser revalidates with
``If-None-Match`` and gets a cheap 304 when nothing changed.
"""

from __future__ import annotations

import mimetypes
import os
import re
import stat
from pathlib import Path

import anyio
from starlette.requests import Request
from starlette.responses import FileResponse, Response

from junction.errors import NotFound

__all__ = ["IMMUTABLE", "REVALIDATE", "content_type", "is_hashed", "resolve_inside", "send_file"]

IMMUTABLE = "public, max-age=31536000, immutable"
REVALIDATE = "no-cache"

# webpack content hashes are 16-20 lowercase hex digits, between dots or at the start.
_HASHED = re.compile(r"(?:^|[.\-_])[0-9a-f]{16,}(?:[.\-_]|$)")

# Explicit types: with ``X-Content-Type-Options: nosniff`` browsers refuse scripts and styles
# served under a wrong type, and the platform's mimetypes table varies between machines.
_TYPES = {
    ".js": "application/javascript",
    ".mjs": "application/javascript",
    ".css": "text/css",
    ".json": "application/json",
    ".map": "application/json",
    ".html": "text/html",
    ".svg": "image/svg+xml",
    ".png": "image/png",
    ".gif": "image/gif",
    ".ico": "image/x-icon",
    ".woff": "font/woff",
    ".woff2": "font/woff2",
    ".ttf": "font/ttf",
    ".otf": "font/otf",
    ".eot": "application/vnd.ms-fontobject",
    ".wasm": "application/wasm",
    ".txt": "text/plain",
}


def is_hashed(name: str) -> bool:
    """Whether a file name carries a webpack content hash (so it may be cached forever)."""
    return _HASHED.search(name) is not None


def content_type(path: Path) -> str:
    """The Content-Type to serve ``path`` with."""
    known = _TYPES.get(path.suffix.lower())
    if known is not None:
        return known
    guessed, _ = mimetypes.guess_type(path.name)
    return guessed or "application/octet-stream"


def resolve_inside(base: Path, relative: str) -> Path | None:
    """Join a ``/``-separated URL path under ``base``, or None if it could leave ``base``.

    Refuses empty, ``.``, ``..`` and dot-file segments, backslashes and NUL bytes. The check
    is lexical on purpose: a symlinked extension directory (``jupyter labextension
    develop``) is the admin's choice and is served through the link.
    """
    if not relative:
        return None
    parts = relative.split("/")
    for part in parts:
        if not part or part.startswith(".") or "\\" in part or "\x00" in part:
            return None
    return base.joinpath(*parts)


async def send_file(request: Request, path: Path, *, immutable: bool | None = None) -> Response:
    """A response with the bytes of ``path``, or :class:`NotFound` if it is not a file.

    ``immutable`` defaults to :func:`is_hashed` on the file name, or to a ``?v=`` query
    parameter, which the HTML shell adds to the main bundle URL. Conditional requests on
    revalidated files get 304.
    """
    try:
        info = await anyio.to_thread.run_sync(os.stat, path)
    except OSError:
        raise NotFound(f"file not found: {path.name}") from None
    if not stat.S_ISREG(info.st_mode):
        raise NotFound(f"file not found: {path.name}")
    if immutable is None:
        immutable = is_hashed(path.name) or "v" in request.query_params
    etag = f'"{info.st_mtime_ns:x}-{info.st_size:x}"'
    headers = {"Cache-Control": IMMUTABLE if immutable else REVALIDATE, "ETag": etag}
    if etag in _etags(request.headers.get("if-none-match", "")):
        return Response(status_code=304, headers=headers)
    return FileResponse(path, stat_result=info, headers=headers, media_type=content_type(path))


def _etags(header: str) -> set[str]:
    return {tag.strip().removeprefix("W/") for tag in header.split(",") if tag.strip()}
