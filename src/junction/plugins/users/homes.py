"""Per-user home folders and shared folders: which paths of the root each user reaches.

Every user has a private folder under the root (``users.home_template``, ``home/{username}``
by default), made on first use with mode 0700. Which path belongs to whom is read off the
template, and the core's authorizer decides, as for kernels: ``execute:contents!user``
reaches one's own home, an administrator's unlimited grant reaches everything, and paths
outside every home belong to nobody (administrators only). Folders shared with a user or one
of their groups are reachable too, read-only or read-write. The folders above what a user
reaches can be listed, showing only the way there.

Shares live in ``users_shares`` and in memory (they are few and read on every contents
request); changes made through this server apply at once. Making or withdrawing a share
moves the credentials generation (``store.py``), and every server sharing the database
reloads its shares when its poll sees the generation move (``UserDirectory.on_generation``),
so a share made or withdrawn on one server applies on the others within about
``users.revocation_poll_seconds``. The shares are never changed in place: a change or a
reload builds a new mapping and swaps it in, so a reader sees either the old shares or the
new ones; a reload that fails keeps the old ones (the poll tries again).
"""

from __future__ import annotations

import contextlib
import os
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Literal

import anyio

from junction.auth.identity import Authenticator, User
from junction.database import Database
from junction.errors import Forbidden, NotFound
from junction.plugin import ServiceKey
from junction.plugins.contents.service import FileNotFound, Reach
from junction.plugins.users import store

__all__ = ["HOMES", "Homes", "Share", "ShareNotFound"]

Access = Literal["read", "write"]

_LOAD_TRIES = 3
"""Reads of the shares :meth:`Homes.load` makes while local changes overlap them."""


class ShareNotFound(NotFound):
    """No share has this id (or the caller may not see it)."""

    def __init__(self, share_id: int) -> None:
        super().__init__(f"No such share: {share_id}", reason="ShareNotFound")


@dataclass(frozen=True)
class Share:
    """A folder shared with a user or a group."""

    id: int
    path: str
    kind: Literal["user", "group"]
    target: str
    access: Access
    created_by: str
    created: datetime

    def reaches(self, user: User) -> bool:
        """Whether this share is for ``user`` (by name or through a group)."""
        if self.kind == "user":
            return self.target == user.username
        return self.target in user.groups


def _under(path: str, folder: str) -> bool:
    return folder == "" or path == folder or path.startswith(folder + "/")


class Homes:
    """The ``CONTENTS_ACCESS`` provider of multi-user mode (see the module docstring)."""

    def __init__(self, root: Path, template: str, auth: Authenticator, database: Database) -> None:
        self.root = root
        self.template = template.strip("/")
        parts = self.template.split("/")
        self._slot = parts.index("{username}")
        self._parts = parts
        self.auth = auth
        self.database = database
        self.shares: dict[int, Share] = {}
        self._changes = 0  # how many times this server changed the shares (see load)
        self._made: set[str] = set()

    # -- homes ---------------------------------------------------------------------------

    def home(self, user: User) -> str | None:
        """The user's home folder (API path); None for the server's own token, whose
        holder runs the server and starts at the root."""
        if user.username == self.auth.user.username:
            return None
        return self.template.replace("{username}", user.username)

    def owner_of(self, path: str) -> str | None:
        """Whose home ``path`` lies in, or None."""
        parts = path.split("/") if path else []
        if len(parts) <= self._slot:
            return None
        for index, part in enumerate(self._parts):
            if index >= len(parts):
                return None
            if index != self._slot and part != parts[index]:
                return None
        if len(parts) < len(self._parts):
            return None
        return parts[self._slot]

    async def _make_home(self, user: User) -> None:
        home = self.home(user)
        if home is None or home in self._made:
            return
        folder = self.root / home

        def make() -> None:
            folder.parent.mkdir(parents=True, exist_ok=True)
            with contextlib.suppress(FileExistsError):
                folder.mkdir(mode=0o700)

        await anyio.to_thread.run_sync(make)
        self._made.add(home)

    # -- reach ---------------------------------------------------------------------------

    def _own(self, user: User, path: str, action: str) -> bool:
        """Whether the authorizer lets ``user`` take ``action`` on ``path`` by ownership."""
        owner = self.owner_of(path)
        return bool(self.auth.authorizer.may_access(user, action, "contents", owner))

    def _shared(self, user: User, path: str) -> Access | None:
        """The widest access a share gives ``user`` on ``path``, or None."""
        best: Access | None = None
        for share in self.shares.values():
            if share.reaches(user) and _under(path, share.path):
                if share.access == "write":
                    return "write"
                best = "read"
        return best

    def _leads_somewhere(self, user: User, path: str) -> bool:
        """Whether ``path`` is a folder above the user's home or a folder shared with them."""
        targets = [
            self.home(user) or "",
            *(s.path for s in self.shares.values() if s.reaches(user)),
        ]
        return any(t != path and _under(t, path) for t in targets)

    async def check(self, user: User, path: str, action: str, *, entry: bool = False) -> Reach:
        """How far ``user`` reaches into ``path``; see ``ContentsAccess.check``.

        The path is judged as written and, when links on the way lead elsewhere, where it
        really leads too: a link in one's home to another's home reaches nothing there.
        With ``entry`` a link as the last segment is judged where it is (deleting one's own
        link is one's own business).
        """
        parts = [part for part in path.split("/") if part not in ("", ".")]
        if ".." in parts:  # judged as written: no path may climb out of where it points
            raise FileNotFound(f"No such file or directory: {path}")
        path = "/".join(parts)
        reach = await self._check(user, path, action)
        real = await anyio.to_thread.run_sync(self._real, path, entry)
        if real is not None and real != path:
            try:
                if await self._check(user, real, action) is not Reach.FULL:
                    raise FileNotFound(f"No such file or directory: {path}")
            except Forbidden:  # say nothing of where the link leads
                raise Forbidden(f"Not allowed to {action} {path}") from None
            except FileNotFound:
                raise FileNotFound(f"No such file or directory: {path}") from None
        return reach

    def _real(self, path: str, entry: bool) -> str | None:
        """The API path ``path`` leads to once every link is followed (but the last one with
        ``entry``; blocking); None outside the root, which the contents service refuses
        anyway."""
        root = os.path.realpath(self.root)
        if entry and path:
            parent, _, name = path.rpartition("/")
            real = os.path.join(os.path.realpath(os.path.join(root, *parent.split("/"))), name)
        else:
            real = os.path.realpath(os.path.join(root, *path.split("/")) if path else root)
        if real == root:
            return ""
        prefix = root.rstrip(os.sep) + os.sep
        if not real.startswith(prefix):
            return None
        return real[len(prefix) :].replace(os.sep, "/")

    def check_open(self, user: User, path: str, real: str, action: str) -> Reach:
        """How far ``user`` reaches into ``real``, where the contents service found ``path``
        open; see ``ContentsAccess.check_open``. ``real`` has no link in it, so it is judged
        as written (no ``realpath``); it reads the shares as :meth:`check` does, from any
        thread (they are swapped in whole, never changed in place)."""
        try:
            return self._reach(user, real, action)
        except Forbidden:
            if real == path:
                raise
            raise Forbidden(f"Not allowed to {action} {path}") from None
        except FileNotFound:
            if real == path:
                raise
            raise FileNotFound(f"No such file or directory: {path}") from None

    async def _check(self, user: User, path: str, action: str) -> Reach:
        await self._make_home(user)
        return self._reach(user, path, action)

    def _reach(self, user: User, path: str, action: str) -> Reach:
        """How far ``user`` reaches into ``path`` as written (no link followed)."""
        if self._own(user, path, action):
            return Reach.FULL
        shared = self._shared(user, path)
        if shared is not None and self.auth.authorizer.is_authorized(user, action, "contents"):
            if action != "read" and shared == "read":
                raise Forbidden(f"{path} is shared with you read-only")
            return Reach.FULL
        if self._leads_somewhere(user, path):
            if action != "read":
                raise Forbidden(f"You may not change {path or 'the root folder'}")
            return Reach.ANCESTOR
        if self._own(user, path, "read") or shared is not None:
            raise Forbidden(f"Not allowed to {action} {path}")
        raise FileNotFound(f"No such file or directory: {path}")

    def visible(self, user: User, path: str) -> bool:
        """Whether ``path`` shows in its parent's listing for ``user``."""
        path = path.strip("/")
        return (
            self._own(user, path, "read")
            or self._shared(user, path) is not None
            or self._leads_somewhere(user, path)
        )

    # -- shares --------------------------------------------------------------------------

    async def load(self) -> bool:
        """Read every share from the database and swap them in; returns whether it did.
        Raises like :meth:`~junction.database.Database.session` when the database cannot be
        read, and then keeps the shares it had.

        When this server changed the shares while they were read, the rows read may predate
        that change (or a withdrawal made elsewhere may postdate the ones in memory), so
        they are read again, up to :data:`_LOAD_TRIES` times. False when a local change
        overlapped every read: the shares in memory are kept, and the generation poll must
        not count the generation as read (``UserDirectory.on_generation``)."""
        for _ in range(_LOAD_TRIES):
            changes = self._changes
            async with self.database.session() as db:
                rows = await store.all_shares(db)
            if changes == self._changes:
                self.shares = {row["id"]: _share(row) for row in rows}
                return True
        return False

    def may_share(self, user: User, path: str) -> bool:
        """Whether ``user`` may share ``path``: an administrator, or the owner of its home."""
        owner = self.owner_of(path)
        if user.admin or self.auth.authorizer.is_authorized(user, "admin:users", ""):
            return True
        return owner == user.username and self._own(user, path, "write")

    def shares_for(self, user: User) -> list[Share]:
        """Shares ``user`` may see: all for administrators, else theirs and those for them."""
        admin = user.admin or self.auth.authorizer.is_authorized(user, "admin:users", "")
        return [
            s
            for s in sorted(self.shares.values(), key=lambda s: s.id)
            if admin or s.reaches(user) or self.owner_of(s.path) == user.username
        ]

    async def share(
        self, user: User, path: str, kind: Literal["user", "group"], target: str, access: Access
    ) -> Share:
        """Share a folder (replacing an earlier share of it with the same target)."""
        path = path.strip("/")
        if not self.may_share(user, path):
            raise FileNotFound(f"No such file or directory: {path}")

        def is_folder() -> bool:
            return (self.root / path).is_dir() and not (self.root / path).is_symlink()

        if not path or ".." in path.split("/") or not await anyio.to_thread.run_sync(is_folder):
            raise FileNotFound(f"No such folder: {path}")
        values = {
            "path": path,
            "kind": kind,
            "target": target,
            "access": access,
            "created_by": user.username,
            "created": datetime.now(UTC),
        }
        async with self.database.session() as db:
            share_id = await store.replace_share(db, **values)
        made = _share({"id": share_id, **values})
        kept = {
            key: s
            for key, s in self.shares.items()
            if (s.path, s.kind, s.target) != (path, kind, target)
        }
        self._changes += 1
        self.shares = {**kept, share_id: made}
        return made

    async def unshare(self, user: User, share_id: int) -> None:
        """Withdraw a share: its owner, an administrator, or the user it was made for."""
        found = self.shares.get(share_id)
        if found is None or not (
            self.may_share(user, found.path) or (found.kind == "user" and found.reaches(user))
        ):
            raise ShareNotFound(share_id)
        async with self.database.session() as db:
            await store.delete_share(db, share_id)
        self._changes += 1
        self.shares = {key: s for key, s in self.shares.items() if key != share_id}


def _share(row: object) -> Share:
    data = dict(row)  # type: ignore[call-overload]
    created = data["created"]
    if created.tzinfo is None:
        created = created.replace(tzinfo=UTC)
    return Share(
        id=data["id"],
        path=data["path"],
        kind=data["kind"],
        target=data["target"],
        access=data["access"],
        created_by=data["created_by"],
        created=created,
    )


HOMES: ServiceKey[Homes] = ServiceKey("users-homes")
"""The users plugin's homes and shares (also provided as ``CONTENTS_ACCESS``)."""
