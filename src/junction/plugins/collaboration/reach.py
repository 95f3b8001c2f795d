"""``RoomGuard``: what a room opens is judged against the reach of the people in it.

A room outlives the request that opened it: it loads, polls and saves its file from its own
tasks for as long as anyone is connected, and a little longer. In multi-user mode each of
those opens is judged (see ``ContentsAccess.check_open``) against everyone in the room, never
against whoever opened it first:

- a read must be within the reach of every connected user; a refused read counts as the
  file being gone (the room closes, its clients get 4404);
- a write must be within the reach of every connected user who may write, and there must be
  one: with no writer connected (they all left, and the room saves what they left unsaved),
  the writers who were connected last count, as do the users connected last for a read.

The room installs the guard in ``REACH_GUARD`` around each of its loads, polls and saves. In
single-user mode there is no ``ContentsAccess`` and no guard.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from junction.errors import Forbidden
from junction.plugins.contents.service import ContentsAccess, FileNotFound, Reach

if TYPE_CHECKING:
    from junction.auth.identity import User
    from junction.plugins.collaboration.room import Client, Room

__all__ = ["RoomGuard"]


class RoomGuard:
    """Judges what one room opens against the reach of its users (see the module docstring).

    Implements ``junction.plugins.contents.service.PathGuard``. Called from worker threads
    too: it reads only the room's immutable member tuples, which the event loop replaces.
    """

    def __init__(self, room: Room, access: ContentsAccess) -> None:
        self.room = room
        self.access = access

    def clients(self, action: str) -> tuple[Client, ...]:
        """Whose reach counts for ``action`` now (see the module docstring)."""
        members = self.room.members
        if action == "read":
            return members or self.room.last_members
        writers = tuple(client for client in members if not client.read_only)
        return writers or self.room.last_writers

    def judge(self, real: str, path: str, action: str, *, listing: bool = False) -> None:
        """Refuse what was opened at ``real`` (a link-free API path) for ``path`` unless every
        user of :meth:`clients` fully reaches it for ``action``; ``listing`` changes
        nothing (a room never lists a folder).

        Called by the contents service right after each open, in any thread. Raises
        :class:`FileNotFound`, or :class:`~junction.errors.Forbidden` for a write with no
        writer to judge it by.
        """
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
