"""Where an open file or directory really is, as the kernel names it.

Code that checks a path and then uses it can be raced: a link on the way may be re-pointed
in between. Checking the *open descriptor* instead is race-free: on Linux the kernel names
the opened object at ``/proc/self/fd/N`` (one ``readlink``, no link in the name), on macOS
``fcntl(F_GETPATH)`` does. The contents plugin judges every descriptor it opens this way,
and jobs name the folders they work through.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from functools import cache

__all__ = ["FdPath", "descriptor_name", "find_fd_path"]

FdPath = Callable[[int], str]
"""Where an open file or directory is: its absolute path with every link resolved."""

_MAXPATHLEN = 1024  # F_GETPATH's buffer size (MAXPATHLEN on macOS)


def _proc_fd_path(fd: int) -> str:
    # The kernel's own name of the open object: no link in it, nothing re-walked.
    return os.readlink(f"/proc/self/fd/{fd}")


def _fcntl_fd_path(fd: int) -> str:  # pragma: no cover - macOS only
    import fcntl

    raw = fcntl.fcntl(fd, fcntl.F_GETPATH, bytes(_MAXPATHLEN))  # type: ignore[attr-defined]  # macOS only
    return os.fsdecode(raw.split(b"\0", 1)[0])


def find_fd_path() -> FdPath | None:
    """How this system names open descriptors: ``/proc/self/fd`` (Linux), ``F_GETPATH``
    (macOS), or None when it cannot."""
    probe = os.open("/", os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        for candidate in (_proc_fd_path, _fcntl_fd_path):
            try:
                if candidate(probe) == "/":
                    return candidate
            except (OSError, AttributeError, ImportError):
                continue
        return None
    finally:
        os.close(probe)


_found = cache(find_fd_path)


def descriptor_name(fd: int) -> str | None:
    """The real path of the open descriptor ``fd``; None where the system cannot name
    descriptors, or the name cannot be read."""
    name = _found()
    if name is None:
        return None
    try:
        return name(fd)
    except OSError:
        return None
