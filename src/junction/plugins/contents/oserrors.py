"""Operating-system errors into contents errors, and request bodies into bytes.

Messages name API paths only: an ``OSError``'s own text carries absolute paths, so it is
never passed on.
"""

from __future__ import annotations

import base64
import errno
import os
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from junction.errors import HTTPError
from junction.plugins.contents.service import (
    BadFormat,
    BadType,
    DirectoryNotEmpty,
    DiskFull,
    FileExists,
    FileNotFound,
    InvalidContent,
    InvalidPath,
    OperationRefused,
    PermissionDenied,
)

__all__ = ["file_bytes", "os_errors", "translate"]


def translate(exc: OSError, api: str, action: str) -> HTTPError | None:
    """The contents error for an operating-system error, or None to let it through (500)."""
    code = exc.errno
    if code in (errno.ENOENT, errno.ENOTDIR):
        return FileNotFound(f"file or directory {api!r} does not exist")
    if code in (errno.EACCES, errno.EPERM):
        return PermissionDenied(f"permission denied: cannot {action} {api!r}")
    if code == errno.EROFS:
        return PermissionDenied(f"cannot {action} {api!r}: the file system is read-only")
    if code == errno.ENOSPC:
        return DiskFull(f"cannot {action} {api!r}: the disk is full; nothing was changed")
    if code == errno.EDQUOT:
        return DiskFull(f"cannot {action} {api!r}: the disk quota is exceeded; nothing was changed")
    if code == errno.EFBIG:
        return DiskFull(
            f"cannot {action} {api!r}: the file is larger than the file system or the "
            "server's file size limit allows; nothing was changed"
        )
    if code == errno.ENAMETOOLONG:
        return InvalidPath(f"cannot {action} {api!r}: a name is too long")
    if code == errno.ELOOP:
        return InvalidPath(f"cannot {action} {api!r}: too many levels of links")
    if code == errno.EEXIST:
        return FileExists(f"{api!r} already exists")
    if code == errno.EISDIR:
        return BadType(f"{api!r} is a directory")
    if code == errno.ENOTEMPTY:
        return DirectoryNotEmpty(f"directory {api!r} is not empty")
    if code in (errno.EINVAL, errno.EIO):
        # Special files answer so (procfs ``mem`` at an unmapped offset, some sysfs and
        # device files), as does a failing disk: the request cannot be served, and the
        # server is fine.
        return OperationRefused(f"cannot {action} {api!r}: {os.strerror(code)}")
    return None


@contextmanager
def os_errors(api: str, action: str) -> Iterator[None]:
    """Translate operating-system errors raised inside the block (see :func:`translate`)."""
    try:
        yield
    except HTTPError:
        raise
    except OSError as exc:
        translated = translate(exc, api, action)
        if translated is None:
            raise
        raise translated from None


def file_bytes(format: str | None, content: Any, api: str) -> bytes:
    """The bytes a file save or upload chunk stands for; raises BadFormat, InvalidContent."""
    if format not in ("text", "base64"):
        raise BadFormat("Must specify format of file contents as 'text' or 'base64'")
    if not isinstance(content, str):
        raise InvalidContent(f"content of {api!r} must be a string for format {format!r}")
    if format == "text":
        try:
            return content.encode("utf-8")
        except UnicodeEncodeError as exc:
            raise InvalidContent(f"content of {api!r} is not valid text: {exc.reason}") from None
    try:
        return base64.b64decode("".join(content.split()), validate=True)
    except ValueError as exc:  # binascii.Error, or non-ASCII characters
        raise InvalidContent(f"content of {api!r} is not valid base64: {exc}") from None
