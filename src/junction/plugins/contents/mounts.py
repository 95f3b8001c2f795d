"""Which filesystem a directory lives on, to tell local disks from network mounts.

A small read from a local filesystem is answered from the page cache in microseconds, so it
costs less on the event loop than the hop to a worker thread; on a network filesystem (NFS,
SMB, FUSE, ...) any call may wait on a server for seconds and must stay off the loop.
:func:`filesystem_type` reads the mount table (``/proc/self/mountinfo``, Linux); a type
outside :data:`LOCAL_TYPES` (or no mount table) counts as remote.
"""

from __future__ import annotations

import os

__all__ = ["LOCAL_TYPES", "filesystem_type", "is_local"]

LOCAL_TYPES = frozenset(
    {"ext2", "ext3", "ext4", "xfs", "btrfs", "f2fs", "zfs", "tmpfs", "ramfs", "overlay", "apfs"}
)
"""Filesystem types whose reads never wait on another machine."""

_MOUNTINFO = "/proc/self/mountinfo"


def _unescape(field: str) -> str:
    """A mountinfo path field with its octal escapes (``\\040`` for a space) decoded."""
    if "\\" not in field:
        return field
    return field.encode().decode("unicode_escape").encode("latin-1").decode(errors="replace")


def filesystem_type(path: str, mountinfo: str = _MOUNTINFO) -> str | None:
    """The type of the filesystem holding ``path`` (its innermost mount); None if unknown."""
    target = os.path.realpath(path)
    try:
        with open(mountinfo, encoding="utf-8", errors="replace") as lines:
            table = lines.read().splitlines()
    except OSError:
        return None
    best, best_type = -1, None
    for line in table:
        fields, _, tail = line.partition(" - ")
        parts = fields.split()
        kinds = tail.split()
        if len(parts) < 5 or not kinds:
            continue
        point = _unescape(parts[4])
        inside = target == point or target.startswith(point.rstrip("/") + "/")
        if inside and len(point) >= best:  # later mounts over the same point win
            best, best_type = len(point), kinds[0]
    return best_type


def is_local(path: str, mountinfo: str = _MOUNTINFO) -> bool:
    """Whether ``path`` is on a filesystem of :data:`LOCAL_TYPES`."""
    return filesystem_type(path, mountinfo) in LOCAL_TYPES
