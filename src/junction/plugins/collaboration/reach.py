"""``RoomGuard``: what a room opens is judged against the reach of the people in it.

A room outlives the request that opened it: it loads, polls and saves its file from its own
tasks for as long as anyone is connected, and a little longer. In multi-user mode each of
those opens is judged (see ``ContentsAccess.check_open``) against everyone in the room, never
against whoever opened it first:

- a read must be within the reach of every connected user; a refused read counts as the
  file being gone (the room closes, its clients get 4404);
- a write must be within the reach of every connected user who may write, and there must be
  one: with no writer connected (they all left, and the room saves what they left unsaved),
  the writers who were connected last count, as do the users connected last for a read;
- before anyone is connected (the first load), the opening request's own guard judges.

A room also keeps reading the one file it first read: the real (link-free) path of its
file is pinned at the first read, and a read or write of the room's path that finds
another real file (a link re-pointed meanwhile) is refused, so the room closes rather than
mix two files. A rename through Junction moves the pin with the file (a room whose file was
reached through a link closes instead). Whoever joins later must reach the pinned file
(:meth:`RoomGuard.admits`), so what the room read for its first users never reaches a user
who only reaches where the link leads now.

The room installs the guard in ``REACH_GUARD`` around each of its loads, polls and saves. In
single-user mode there is no ``ContentsAccess`` and no guard.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from junction.errors import Forbidden, HTTPError
from junction.plugins.contents.service import ContentsAccess, FileNotFound, PathGuard, Reach

if TYPE_CHECKING:
    from junction.auth.identity import User
    from junction.plugins.collaboration.document import DocumentRoom
    from junction.plugins.collaboration.room import Client

__all__ = ["RoomGuard"]


class RoomGuard:
    """Judges what one room opens against the reach of its users (see the module docstring).

    Implements ``junction.plugins.contents.service.PathGuard``. Called from worker threads
    too: it reads only the room's immutable member tuples, which the event loop replaces.
    ``opener`` is the guard of the request that opened the room.
    """

    def __init__(
        self, room: DocumentRoom, access: ContentsAccess, opener: PathGuard | None
    ) -> None:
        self.room = room
        self.access = access
        self.opener = opener
        self.source: str | None = None
        """The real API path of the room's file, pinned at its first read (None: not yet)."""

    def clients(self, action: str) -> tuple[Client, ...]:
        """Whose reach counts for ``action`` now (see the module docstring)."""
        members = self.room.members
        if action == "read":
            return members or self.room.last_members
        writers = tuple(client for client in members if not client.read_only)
        return writers or self.room.last_writers

    def judge(self, real: str, path: str, action: str, *, listing: bool = False) -> None:
        """Refuse what was opened at ``real`` (a link-free API path) for ``path`` unless every
        user of :meth:`clients` fully reaches it for ``action``, and, when it is the
        room's file, unless it is the file the room first read; ``listing`` changes
        nothing (a room never lists a folder).

        Called by the contents service right after each open, in any thread. Raises
        :class:`FileNotFound`, or :class:`~junction.errors.Forbidden` for a write with no
        writer to judge it by.
        """
        pinned = path == self.room.path
        if pinned and self.source is not None and real != self.source:
            raise FileNotFound(f"No such file or directory: {path}")
        if self.room.members or self.room.last_members or self.opener is None:
            self._judge_clients(real, path, action)
        else:  # nobody has joined yet: the room is loading for its opener
            self.opener.judge(real, path, action, listing=listing)
        if pinned and self.source is None and action == "read":
            self.source = real

    def _judge_clients(self, real: str, path: str, action: str) -> None:
        clients = self.clients(action)
        if not clients:
            if action == "read":
                raise FileNotFound(f"No such file or directory: {path}")
            raise Forbidden(f"nobody who may write {path!r} is in its room")
        judged: set[str] = set()
        for client in clients:
            user: User | None = client.user
            if user is None:  # a client of unknown identity reaches nothing
                raise FileNotFound(f"No such file or directory: {path}")
            if user.username in judged:
                continue
            judged.add(user.username)
            try:
                reach = self.access.check_open(user, path, real, action)
            except Forbidden:
                if action != "read":
                    raise
                reach = None  # a read refused for anyone reads as a file gone
            if reach is not Reach.FULL:
                raise FileNotFound(f"No such file or directory: {path}")

    def admits(self, user: User | None) -> bool:
        """Whether ``user`` may join: they fully reach, for reading, the file the room read.

        Called under the room's lock (no read meanwhile), before the client joins.
        """
        source = self.source
        if source is None:
            return True
        if user is None:
            return False
        try:
            reach = self.access.check_open(user, self.room.path or source, source, "read")
        except HTTPError:
            return False
        return reach is Reach.FULL

    def moved(self, old: str, new: str) -> bool:
        """The room's file was renamed through Junction from API path ``old`` to ``new``:
        pin it at its new place; False when it was reached through a link (its real path
        was not ``old``), which the room cannot follow safely."""
        if self.source is None:
            return True
        if self.source != old:
            return False
        self.source = new
        return True
