"""Contents models from ``stat`` results, cheaply enough for 100,000-entry listings.

Per entry this costs one ``stat`` and one dict: timestamps are formatted from cached
per-second prefixes, MIME types are cached per extension and ``writable`` is read from the
mode bits rather than asking the kernel again (so ACLs and read-only mounts are not
reflected; the write itself still reports them).
"""

from __future__ import annotations

import mimetypes
import os
import stat
import time

from junction.plugins.contents.models import Model

__all__ = ["ModelFactory", "iso_from_ns"]

NOTEBOOK_SUFFIX = ".ipynb"
_ENCODING_SUFFIXES = frozenset(suffix.lower() for suffix in mimetypes.encodings_map)
_EPOCH = "1970-01-01T00:00:00."


def _prefix(seconds: int) -> str:
    """``2024-05-01T12:00:00.``: the part of a timestamp before the microseconds."""
    try:
        return time.strftime("%Y-%m-%dT%H:%M:%S.", time.gmtime(seconds))
    except (OverflowError, OSError, ValueError):  # absurd timestamps: Jupyter falls back too
        return _EPOCH


def iso_from_ns(ns: int) -> str:
    """Format nanoseconds since the epoch as Jupyter does: ``2024-05-01T12:00:00.123456Z``."""
    micros = ns // 1000
    seconds = micros // 1_000_000
    return f"{_prefix(seconds)}{micros - seconds * 1_000_000:06d}Z"


class ModelFactory:
    """Builds models without content for one process identity (for ``writable``)."""

    def __init__(self) -> None:
        self.euid = os.geteuid()
        self.groups = frozenset((os.getegid(), *os.getgroups()))
        self._mimetypes: dict[str, str | None] = {}
        self._seconds: dict[str, str] = {}

    def iso(self, ns: int) -> str:
        """:func:`iso_from_ns`, fast: the digits of ``ns`` are the microseconds, and the
        part before them is cached per second (listings repeat seconds a lot).

        Listings inline this; keep the two in step.
        """
        digits = str(ns)
        if ns < 1_000_000_000:  # before 1970-01-01T00:00:01: not worth a fast path
            return iso_from_ns(ns)
        key = digits[:-9]
        prefix = self._seconds.get(key)
        if prefix is None:
            prefix = self.second(key)
        return prefix + digits[-9:-3] + "Z"

    def second(self, key: str) -> str:
        """The cached timestamp prefix for a count of seconds written in decimal."""
        if len(self._seconds) > 65536:
            self._seconds.clear()
        prefix = self._seconds[key] = _prefix(int(key))
        return prefix

    def mimetype(self, name: str) -> str | None:
        """The MIME type guessed from a file name, cached per extension."""
        dot = name.rfind(".")
        if dot <= 0:
            return mimetypes.guess_type(name)[0]
        suffix = name[dot:]
        try:
            return self._mimetypes[suffix]
        except KeyError:
            pass
        if suffix.lower() in _ENCODING_SUFFIXES:  # '.tar.gz': the answer depends on more
            return mimetypes.guess_type(name)[0]
        guessed = mimetypes.guess_type("x" + suffix)[0]
        self._mimetypes[suffix] = guessed
        return guessed

    def writable(self, st: os.stat_result) -> bool:
        """Whether this process may write the item, judged from its mode bits."""
        if self.euid == 0:
            return True
        mode = st.st_mode
        if st.st_uid == self.euid:
            return bool(mode & stat.S_IWUSR)
        if st.st_gid in self.groups:
            return bool(mode & stat.S_IWGRP)
        return bool(mode & stat.S_IWOTH)

    def model(self, api_path: str, name: str, st: os.stat_result) -> Model | None:
        """The model of a directory, notebook or file, or None for other kinds (sockets...).

        ``st`` must come from a ``stat`` that followed links.
        """
        mode = st.st_mode
        if stat.S_ISDIR(mode):
            kind, size, mimetype = "directory", None, None
        elif stat.S_ISREG(mode):
            size = st.st_size
            if name.endswith(NOTEBOOK_SUFFIX):
                kind, mimetype = "notebook", None
            else:
                kind, mimetype = "file", self.mimetype(name)
        else:
            return None
        return {
            "name": name,
            "path": api_path,
            "type": kind,
            "writable": self.writable(st),
            "created": self.iso(st.st_ctime_ns),
            "last_modified": self.iso(st.st_mtime_ns),
            "size": size,
            "mimetype": mimetype,
            "format": None,
            "content": None,
            "hash": None,
            "hash_algorithm": None,
        }
