"""Directory order: a directory read as the filesystem returns it, only as far as needed.

A name-ordered page must read every name of the directory first (the smallest 500 names of
100,000 can be anywhere); a directory-order page reads ``os.scandir`` on the open directory
until it holds one page plus one name (which tells whether a next page exists), so the
first page of 100,000 entries costs about what one of 500 does.

:class:`NameScan` hands out the *listed names* of a directory in that order: names that
pass the listing's filters (hidden names, ``hide_globs``, undecodable names, the kinds of
entries listed and the caller's ``visible`` filter), in chunks read on demand. Positions
count listed names only, so nothing a caller may not see shows in a cursor.

:class:`ScanCursor` is where a page ended: how many listed names it had passed and the name
of its last entry. It goes to the client as an opaque string (``d1.<position>.<name in
base64url>``). :func:`resume` finds the place again: when the listed name at
``position - 1`` is still that name (an unchanged directory), the next page starts at
``position``; when the directory changed, it starts after the name wherever it now is,
or, when the name is gone, at ``position`` (entries added or removed meanwhile may then be
missed or repeated, as with ``readdir``).
"""

from __future__ import annotations

import base64
import binascii
import itertools
import os
from collections.abc import Callable, Iterator
from dataclasses import dataclass

from junction.plugins.contents.service import InvalidCursor

__all__ = ["CURSOR_PREFIX", "NameScan", "ScanCursor", "resume"]

CURSOR_PREFIX = "d1."
"""What every directory-order cursor starts with (the order and the cursor's version)."""
MIN_CHUNK = 64
"""The fewest entries read from the directory at once."""
SKIP_CHUNK = 4096
"""Names read at once while passing over earlier pages."""
_MAX_POSITION_DIGITS = 18
_MAX_NAME_CHARS = 1400
"""Longer than the base64 of any name a filesystem allows (255 bytes on Linux, NAME_MAX)."""
_BASE64URL = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_")


@dataclass(frozen=True, slots=True)
class ScanCursor:
    """Where a directory-order page ended: ``position`` listed names passed, the last of
    them ``name`` (the page's last entry)."""

    position: int
    name: str

    def encode(self) -> str:
        """The cursor as sent to clients: ``d1.<position>.<name in unpadded base64url>``."""
        token = base64.urlsafe_b64encode(self.name.encode()).rstrip(b"=").decode("ascii")
        return f"{CURSOR_PREFIX}{self.position}.{token}"

    @classmethod
    def decode(cls, text: str) -> ScanCursor:
        """The cursor :meth:`encode` gave as ``text``; raises InvalidCursor for anything else
        (called before the directory is read)."""
        position, _, token = text.removeprefix(CURSOR_PREFIX).partition(".")
        name = None
        if (
            text.startswith(CURSOR_PREFIX)
            and position.isascii()
            and position.isdigit()
            and len(position) <= _MAX_POSITION_DIGITS
            and 0 < len(token) <= _MAX_NAME_CHARS
            and _BASE64URL.issuperset(token)
        ):
            try:
                raw = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))
                name = raw.decode()
            except (binascii.Error, UnicodeDecodeError):
                name = None
        if not name or int(position) < 1 or "/" in name or "\0" in name:
            shown = text if len(text) <= 40 else text[:40] + "..."
            raise InvalidCursor(
                "after must be the pagination.next of an earlier page in directory order, "
                f"passed back as it is; got {shown!r}"
            )
        return cls(int(position), name)


class NameScan:
    """The listed names of one open directory in the filesystem's order, read on demand.

    ``entries`` is an ``os.scandir`` iterator; ``keep`` filters a chunk of its entries down
    to the listed names, keeping their order. Names are *taken* in order; :attr:`position`
    counts those taken, :attr:`read` those read so far, and once :attr:`exhausted` (the
    directory was read to its end) :attr:`read` is the number of listed names.
    """

    def __init__(
        self,
        entries: Iterator[os.DirEntry[str]],
        keep: Callable[[list[os.DirEntry[str]]], list[str]],
    ) -> None:
        self._entries = entries
        self._keep = keep
        self._ahead: list[str] = []
        self.read = 0
        self.exhausted = False

    @property
    def position(self) -> int:
        """How many listed names were taken (the index of the next one)."""
        return self.read - len(self._ahead)

    def take(self, count: int) -> list[str]:
        """The next ``count`` listed names; fewer only at the end of the directory."""
        while len(self._ahead) < count and not self.exhausted:
            self._read_chunk(max(count - len(self._ahead), MIN_CHUNK))
        taken = self._ahead[:count]
        del self._ahead[:count]
        return taken

    def more(self) -> bool:
        """Whether a listed name follows (reading on until one does or the directory ends)."""
        while not self._ahead and not self.exhausted:
            self._read_chunk(MIN_CHUNK)
        return bool(self._ahead)

    def give_back(self, names: list[str]) -> None:
        """Put names just taken back, to be taken again next (they come before the rest)."""
        self._ahead[:0] = names

    def _read_chunk(self, count: int) -> None:
        raw = list(itertools.islice(self._entries, count))
        if len(raw) < count:
            self.exhausted = True
        if raw:
            names = self._keep(raw)
            self.read += len(names)
            self._ahead.extend(names)


def resume(scan: NameScan, cursor: ScanCursor) -> None:
    """Take the names of ``scan`` up to where ``cursor`` says the previous page ended.

    The scan goes on right after the cursor's name when that name is still listed (at its
    position in an unchanged directory, elsewhere when names were added or removed before
    it), and at the cursor's position when it is not. Only listed names are compared, so
    a cursor naming a hidden entry behaves as one naming a missing entry.
    """
    position, last = cursor.position, cursor.name
    after_last: list[str] | None = None  # names taken after ``last``, once it was seen
    while scan.position < position:
        names = scan.take(min(position - scan.position, SKIP_CHUNK))
        if not names:
            break
        if after_last is not None:
            after_last += names
        elif last in names:
            after_last = names[names.index(last) + 1 :]
    if after_last is not None:  # an unchanged directory: ``last`` was the last name taken
        scan.give_back(after_last)
        return
    passed: list[str] = []  # ``last`` was not among the first ``position`` names
    while names := scan.take(SKIP_CHUNK):
        if last in names:
            scan.give_back(names[names.index(last) + 1 :])
            return
        passed += names
    scan.give_back(passed)
