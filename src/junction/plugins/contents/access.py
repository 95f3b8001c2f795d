"""Who may reach which path: the hook multi-user mode plugs into the contents routes.

The contents service itself knows nothing of users; every route that takes a path from the
request (``/api/contents`` and its checkpoints and trust, ``/files``, ``/view``,
``/api/resolvePath``, and other plugins naming folders, such as jobs) asks
:func:`check_path` first. Without a :data:`CONTENTS_ACCESS` provider (single-user mode)
every path under the root is reachable, as always.
"""

from __future__ import annotations

from enum import Enum
from typing import Protocol

from starlette.requests import HTTPConnection

from junction.auth.identity import User
from junction.auth.middleware import current_user
from junction.plugin import ServiceKey

__all__ = ["CONTENTS_ACCESS", "ContentsAccess", "Reach", "check_path", "visible_entries"]


class Reach(Enum):
    """How far a user reaches into one path."""

    FULL = "full"
    """The path itself is theirs to read (or write, when that was asked)."""
    ANCESTOR = "ancestor"
    """A folder above what they may reach: readable as a listing of those entries only."""


class ContentsAccess(Protocol):
    """Decides which paths a user reaches (their home, folders shared with them, ...).

    Paths are API paths (``/``-separated, relative to the root, no leading slash).
    """

    async def check(self, user: User, path: str, action: str) -> Reach:
        """How far ``user`` reaches into ``path`` for ``action`` (``read`` or ``write``).

        Raises :class:`~junction.plugins.contents.service.FileNotFound` when the path is
        out of reach (so its existence leaks nothing) and
        :class:`~junction.errors.Forbidden` for a write to what the user may only read.
        """
        ...

    def visible(self, user: User, path: str) -> bool:
        """Whether ``path`` shows in a listing of its parent for ``user``."""
        ...

    def home(self, user: User) -> str | None:
        """The user's home folder (API path), or None when they have none (the root)."""
        ...


CONTENTS_ACCESS: ServiceKey[ContentsAccess] = ServiceKey("contents-access")
"""Per-user path access in multi-user mode (provided by the ``users`` plugin)."""


def _access(conn: HTTPConnection) -> ContentsAccess | None:
    access: ContentsAccess | None = conn.app.state.services.get_optional(CONTENTS_ACCESS)
    return access


async def check_path(conn: HTTPConnection, path: str, action: str) -> Reach:
    """How far the caller reaches into ``path`` (see :meth:`ContentsAccess.check`);
    :attr:`Reach.FULL` in single-user mode."""
    access = _access(conn)
    if access is None:
        return Reach.FULL
    return await access.check(current_user(conn.scope), path.strip("/"), action)


def visible_entries(
    conn: HTTPConnection, entries: list[dict[str, object]]
) -> list[dict[str, object]]:
    """The entries of a folder listing the caller may see (all in single-user mode)."""
    access = _access(conn)
    if access is None:
        return entries
    user = current_user(conn.scope)
    return [e for e in entries if access.visible(user, str(e.get("path", "")))]


def home_of(conn: HTTPConnection) -> str | None:
    """The caller's home folder, or None (single-user mode, or no home)."""
    access = _access(conn)
    return None if access is None else access.home(current_user(conn.scope))
