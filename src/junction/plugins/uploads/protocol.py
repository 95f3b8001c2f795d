"""The tus 1.0.0 wire: headers read and written, and the errors only the protocol knows.

See https://tus.io/protocols/resumable-upload (core protocol and the ``creation``,
``creation-with-upload``, ``termination``, ``expiration`` and ``checksum`` extensions).
Every answer carries ``Tus-Resumable``; every request but ``OPTIONS`` must too (else 412).

``Upload-Metadata`` names the destination: ``filename`` (one name) goes into the folder
``path`` (an API path; default: the user's home, or the root), or, without ``filename``,
``path`` is the whole destination. ``overwrite`` (with no value, or ``true``/``1``) allows
replacing an existing file.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
from collections.abc import Callable, Mapping
from email.utils import formatdate
from functools import partial
from typing import Any

from junction.errors import BadRequest, HTTPError
from junction.plugins.uploads.models import NewUpload

__all__ = [
    "CHECKSUMS",
    "EXTENSIONS",
    "OFFSET_OCTET_STREAM",
    "TUS_VERSION",
    "HashChecksum",
    "TusVersionMismatch",
    "UnsupportedMediaType",
    "http_date",
    "new_upload",
    "parse_checksum",
    "parse_metadata",
    "parse_offset",
]

TUS_VERSION = "1.0.0"
EXTENSIONS = "creation,creation-with-upload,termination,expiration,checksum"
OFFSET_OCTET_STREAM = "application/offset+octet-stream"
_MAX_DIGITS = 19  # 2**63 has 19 digits: no larger file is possible anyway

CHECKSUMS: Mapping[str, Callable[[], Any]] = {
    # Integrity checks against transfer errors, not security: allowed where FIPS mode is on.
    "sha1": partial(hashlib.new, "sha1", usedforsecurity=False),
    "sha256": hashlib.sha256,
    "sha512": hashlib.sha512,
    "md5": partial(hashlib.new, "md5", usedforsecurity=False),
}
"""The ``Upload-Checksum`` algorithms accepted (``Tus-Checksum-Algorithm``)."""

_TRUE = {"", "1", "true", "yes"}


class TusVersionMismatch(HTTPError):
    """The request does not say ``Tus-Resumable: 1.0.0``."""

    status_code = 412
    default_reason = "Precondition Failed"


class UnsupportedMediaType(HTTPError):
    """A ``PATCH`` whose body is not ``application/offset+octet-stream``."""

    status_code = 415
    default_reason = "Unsupported Media Type"


class HashChecksum:
    """An ``Upload-Checksum`` computed with :mod:`hashlib` as the bytes are written."""

    def __init__(self, algorithm: str, expected: bytes) -> None:
        self.algorithm = algorithm
        self._hash = CHECKSUMS[algorithm]()
        self._expected = expected

    def update(self, data: bytes | memoryview) -> None:
        """Add bytes (hashlib releases the GIL for large buffers)."""
        self._hash.update(data)

    def matches(self) -> bool:
        """Whether the digest of the bytes so far is the expected one."""
        return hmac.compare_digest(self._hash.digest(), self._expected)


def parse_checksum(header: str | None) -> HashChecksum | None:
    """``Upload-Checksum: <algorithm> <base64 digest>``; raises BadRequest (400) for an
    algorithm not in :data:`CHECKSUMS` or a malformed value."""
    if header is None:
        return None
    algorithm, _, encoded = header.strip().partition(" ")
    if algorithm not in CHECKSUMS:
        raise BadRequest(
            f"Upload-Checksum: unsupported algorithm {algorithm!r} "
            f"(supported: {', '.join(CHECKSUMS)})"
        )
    try:
        digest = base64.b64decode(encoded.strip(), validate=True)
    except binascii.Error:
        raise BadRequest("Upload-Checksum: the digest is not base64") from None
    return HashChecksum(algorithm, digest)


def parse_offset(value: str | None, name: str) -> int:
    """A non-negative integer header (``Upload-Offset``, ``Upload-Length``); 400 if not."""
    if value is None:
        raise BadRequest(f"{name} is missing")
    value = value.strip()
    if len(value) > _MAX_DIGITS:  # before int(): Python refuses to parse very long numbers
        raise BadRequest(f"{name} is too large: more than {_MAX_DIGITS} digits")
    if not value.isascii() or not value.isdigit():
        raise BadRequest(f"{name} must be a non-negative integer, not {value!r}")
    return int(value)


def parse_metadata(header: str | None) -> dict[str, str | None]:
    """``Upload-Metadata``: comma-separated ``key base64value`` pairs (the value may be
    missing). Values are decoded as UTF-8; raises BadRequest (400) when malformed."""
    pairs: dict[str, str | None] = {}
    if not header or not header.strip():
        return pairs
    for item in header.split(","):
        key, _, encoded = item.strip().partition(" ")
        if not key or " " in encoded.strip() or key in pairs:
            raise BadRequest(f"Upload-Metadata: malformed pair {item.strip()!r}")
        if not encoded.strip():
            pairs[key] = None
            continue
        try:
            pairs[key] = base64.b64decode(encoded.strip(), validate=True).decode()
        except (binascii.Error, UnicodeDecodeError):
            raise BadRequest(f"Upload-Metadata: the value of {key!r} is not base64 UTF-8") from None
    return pairs


def new_upload(headers: Mapping[str, str], home: str | None) -> NewUpload:
    """The upload a ``POST`` asks for; ``home`` is the folder used when ``path`` is not
    given (the user's home, or None: the root)."""
    if headers.get("upload-defer-length") is not None:
        raise BadRequest("Upload-Defer-Length is not supported: send Upload-Length")
    length = parse_offset(headers.get("upload-length"), "Upload-Length")
    raw = headers.get("upload-metadata", "")
    metadata = parse_metadata(raw)
    filename = metadata.get("filename")
    path = metadata.get("path")
    if filename:
        if "/" in filename:
            raise BadRequest(f"Upload-Metadata: filename {filename!r} must be one name")
        folder = path if path is not None else (home or "")
        destination = f"{folder.strip('/')}/{filename}"
    elif path:
        destination = path
    else:
        raise BadRequest("Upload-Metadata must give 'filename' (and a folder 'path') or 'path'")
    overwrite = "overwrite" in metadata and (metadata["overwrite"] or "").lower() in _TRUE
    return NewUpload(length=length, destination=destination, overwrite=overwrite, metadata=raw)


def http_date(moment: float) -> str:
    """An HTTP date (RFC 9110), as ``Upload-Expires`` is written."""
    return formatdate(moment, usegmt=True)
