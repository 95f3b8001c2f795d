"""``UserDirectory``: the users service and identity provider, with the cache in front.

The hot path (a request carrying a token or a session cookie) is answered from memory:

- a checked token or session is kept for ``users.cache_seconds``, keyed by the SHA-256
  digest of the secret (the secret itself is never kept);
- unknown digests are remembered for as long, so guessing costs no database query either;
- "last seen" of sessions and "last used" of tokens are recorded in memory and written in
  one transaction every :data:`FLUSH_SECONDS` by a background task.

Every change made through this object (revoking a token, ending sessions, disabling an
account, changing roles) drops the affected cache entries at once, so on this server the
revocation delay is zero.

Changes made by another process sharing the database (another server behind the same proxy,
``junction users revoke`` from a shell) reach this one through the credentials generation, a
counter that every revoking write bumps in the write's transaction (``store.py``). :meth:`run`
reads it every ``users.revocation_poll_seconds`` (one primary-key lookup, on a pooled
connection given back at once) and, when it moved, drops every cached token, session and
unknown digest: such a change applies everywhere within about one poll interval, plus the
poll's own query. The callbacks given to :meth:`on_generation` run then too (the homes
reload their shares); one that fails, or reports that a local change overlapped it, leaves the
generation unread, so the next tick drops and reloads again. A lookup that was under way
while the cache was dropped (here or by a change made through this object) answers its request
but caches nothing, since it may have read the database before the change. While the
database cannot be read, the poll logs a warning and tries again at the next tick; entries
then live at most ``users.cache_seconds``, the bound without polling.

Session lifetime: a session ends ``session_idle_hours`` after its last request, and
``session_max_days`` after login whatever happens. The users a lookup returns carry that end
(a token's: its expiry) as ``User.expires``, so the session's open WebSockets are checked again
then and closed unless a request used the session meanwhile.
"""

from __future__ import annotations

import logging
import re
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta

import anyio
import anyio.to_thread

from junction.auth.identity import User
from junction.auth.passwords import hash_password, verify_password
from junction.auth.sockets import credentials_changed
from junction.database import Database
from junction.errors import Forbidden
from junction.events import EventBus
from junction.eventschemas import AUTH_EVENTS
from junction.plugins.users import credentials, store
from junction.plugins.users.service import (
    BadUserName,
    IdentitySource,
    TokenNotFound,
    UserExists,
    UserNotFound,
)
from junction.plugins.users.settings import UsersSettings
from junction.plugins.users.store import Account, SessionRow, TokenRow

__all__ = ["FLUSH_SECONDS", "UserDirectory"]

log = logging.getLogger("junction.users")

FLUSH_SECONDS = 30.0
"""How often last-seen and last-used times are written to the database."""

_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._@-]{0,63}$")
_UNKNOWN_LIMIT = 10_000
_ANNOUNCE_EVERY = 3600.0
"""Seconds between two ``token_used`` events of one token."""
# A hash to verify against when the account does not exist, so a wrong username takes as
# long as a wrong password and does not reveal which accounts exist.
_DUMMY_HASH = hash_password("not a password")

Recheck = Callable[[SessionRow], Awaitable[tuple[bool | None, dict[str, str]]]]
"""Asks the OpenID issuer whether a session still belongs to an allowed user: True, False
(log the session out), or None (cannot tell now; keep it); and the session's columns to
change (``access_token``, ``refresh_token`` when the tokens were refreshed). When the user is
still allowed it also applies what the issuer now says of them (groups, admin flag) through
:meth:`UserDirectory.refresh_external`; the session's account is read again afterwards."""


@dataclass
class _Cached:
    user: User
    account_id: int
    cached_at: float  # monotonic
    expires: float | None  # epoch seconds of the absolute expiry
    last_seen: float = 0.0  # epoch seconds, sessions only
    token_id: int | None = None  # tokens only
    reported: User | None = None  # sessions only: ``user`` with the end last reported


def check_name(name: str) -> str:
    """Return ``name`` if it can be a username; raises :class:`BadUserName`."""
    if not _NAME.fullmatch(name):
        raise BadUserName(
            f"invalid username {name!r}: 1-64 letters, digits, '.', '_', '@' or '-', "
            "starting with a letter or digit"
        )
    return name


class UserDirectory:
    """The :class:`~junction.plugins.users.service.UsersService` and the ``IDENTITY`` provider.

    Created by the plugin's lifespan; :meth:`run` (the flusher) runs in the server's task
    group, :meth:`flush` once more at shutdown.
    """

    def __init__(self, database: Database, settings: UsersSettings) -> None:
        self.database = database
        self.settings = settings
        self.password_login = settings.password_login
        self.recheck: Recheck | None = None
        self.logout_url: Callable[[SessionRow], str | None] | None = None
        self._links: list[tuple[str, str]] = []
        self._forward: str | None = None
        self._ttl = settings.cache_seconds
        self._idle = settings.session_idle_hours * 3600
        self._max_age = timedelta(days=settings.session_max_days)
        self._tokens: dict[str, _Cached] = {}
        self._sessions: dict[str, _Cached] = {}
        self._unknown: dict[str, float] = {}
        self._seen: dict[str, float] = {}  # digest -> epoch seconds, written by flush()
        self._used: dict[str, float] = {}
        self._announced: dict[str, float] = {}  # digest -> when its use was last an event
        self._generation: int | None = None  # the credentials generation last read
        self._drops = 0  # how many times cached credentials were dropped (see _keep)
        self._reloads: list[Callable[[], Awaitable[bool | None]]] = []
        self.events: EventBus | None = None
        self._limiter = anyio.CapacityLimiter(2)

    # -- identity provider: the hot path ---------------------------------------------------

    def login_links(self) -> Sequence[tuple[str, str]]:
        """Other ways to log in (OpenID Connect), as ``(label, path)``."""
        return self._links

    def add_login_link(self, label: str, path: str) -> None:
        """Offer another way to log in on the login page."""
        self._links.append((label, path))

    def attach_source(
        self, source: IdentitySource, *, label: str, path: str, forward: bool = False
    ) -> None:
        """Take logins from ``source`` (``users.identity``): its button on the login page at
        ``path``, its rechecks and logout pages; with ``forward``, the login page sends
        browsers straight to ``path`` (no password form)."""
        self.recheck = source.recheck
        self.logout_url = source.logout_url
        self.add_login_link(label, path)
        if forward:
            self._forward = path

    def login_forward(self) -> str | None:
        """Where the login page forwards browsers at once (the core's ``LoginForward``):
        the identity source's login when password logins are off, else None."""
        return self._forward

    async def user_for_token(self, token: str) -> User | None:
        """The user of an API token, from memory when it was checked recently."""
        if not credentials.looks_like_token(token):
            return None
        key = credentials.digest(token)
        now = time.time()
        entry = self._fresh(self._tokens, key)
        if entry is None:
            if self._known_unknown(key):
                return None
            entry = await self._load_token(key)
            if entry is None:
                return None
        if entry.expires is not None and now >= entry.expires:
            self._tokens.pop(key, None)
            return None
        self._used[key] = now
        if self.events is not None and now - self._announced.get(key, 0.0) >= _ANNOUNCE_EVERY:
            self._announce_use(key, entry, now)
        return entry.user

    def _announce_use(self, key: str, entry: _Cached, now: float) -> None:
        """Emit ``token_used`` for a token's first use in :data:`_ANNOUNCE_EVERY` seconds."""
        assert self.events is not None
        if len(self._announced) >= _UNKNOWN_LIMIT:
            self._announced.clear()
        self._announced[key] = now
        data: dict[str, object] = {"action": "token_used"}
        if entry.token_id is not None:
            data["token_id"] = entry.token_id
        try:
            self.events.emit(AUTH_EVENTS, data, username=entry.user.username)
        except Exception:
            log.exception("could not emit a token_used event")

    async def user_for_session(self, session: str, *, touch: bool = True) -> User | None:
        """The user of a session cookie; ends the session when it is idle or too old.

        A request is activity and moves the session's "last seen" time; with ``touch``
        False it does not (the recheck of an open WebSocket, which is no activity of its
        user, so that ``users.session_idle_hours`` still ends a session left open in a tab).
        """
        if len(session) > 128:
            return None
        key = credentials.digest(session)
        now = time.time()
        entry = self._fresh(self._sessions, key)
        if entry is None:
            if self._known_unknown(key):
                return None
            entry = await self._load_session(key)
            if entry is None:
                return None
        if (
            entry.expires is not None and now >= entry.expires
        ) or now - entry.last_seen > self._idle:
            self._sessions.pop(key, None)
            async with self.database.session() as db:
                await store.delete_session(db, key)
            return None
        if touch:
            entry.last_seen = now
            self._seen[key] = now
        ends = entry.last_seen + self._idle
        if entry.expires is not None:
            ends = min(ends, entry.expires)
        reported = entry.reported
        # No copy of the user per request on the hot path: an end reported up to a second
        # early, and still ahead, is reused (a WebSocket then checks a little early, and
        # waits again).
        shown = reported.expires if reported is not None else None
        if shown is None or not max(ends - 1.0, now) < shown <= ends:
            reported = entry.reported = replace(entry.user, expires=ends)
        return reported

    def _fresh(self, cache: dict[str, _Cached], key: str) -> _Cached | None:
        entry = cache.get(key)
        if entry is not None and time.monotonic() - entry.cached_at >= self._ttl:
            # Expired from the cache: the next lookup reads the database again. The time it
            # was last seen must survive the reload, or an idle session would look fresh.
            cache.pop(key, None)
            return None
        return entry

    def _known_unknown(self, key: str) -> bool:
        until = self._unknown.get(key)
        if until is None:
            return False
        if time.monotonic() < until:
            return True
        del self._unknown[key]
        return False

    def _remember_unknown(self, key: str, drops: int | None = None) -> None:
        if drops is not None and drops != self._drops:
            return
        if len(self._unknown) >= _UNKNOWN_LIMIT:
            self._unknown.clear()
        self._unknown[key] = time.monotonic() + self._ttl

    def _keep(self, cache: dict[str, _Cached], key: str, entry: _Cached, drops: int) -> None:
        """Cache what a lookup found, unless the cache was dropped since it began (``drops``
        was :attr:`_drops` then): it may have read the database before a revocation."""
        if drops == self._drops:
            cache[key] = entry

    async def _load_token(self, key: str) -> _Cached | None:
        drops = self._drops
        async with self.database.session() as db:
            found = await store.token_with_account(db, key)
        if found is None or not found[1].enabled:
            self._remember_unknown(key, drops)
            return None
        row, account = found
        expires = row.expires.timestamp() if row.expires is not None else None
        user = replace(account.user(row.scopes), expires=expires)
        entry = _Cached(user, account.id, time.monotonic(), expires)
        entry.token_id = row.id
        self._keep(self._tokens, key, entry, drops)
        return entry

    async def _load_session(self, key: str) -> _Cached | None:
        drops = self._drops
        async with self.database.session() as db:
            found = await store.session_with_account(db, key)
        if found is None or not found[1].enabled:
            self._remember_unknown(key, drops)
            return None
        row, account = found
        if self.recheck is not None and row.access_token and self._recheck_due(row):
            allowed, renewed = await self.recheck(row)
            async with self.database.session() as db:
                if allowed is False:
                    log.info("user %s is no longer allowed by the issuer; logged out", account.name)
                    await store.delete_session(db, key)
                    self._remember_unknown(key)
                    return None
                if allowed is True:
                    await store.update_session(db, key, checked=datetime.now(UTC), **renewed)
                    # The recheck may have changed the account's groups or admin flag.
                    fresh = await store.account_by_id(db, account.id)
                    if fresh is None or not fresh.enabled:
                        self._remember_unknown(key)
                        return None
                    account = fresh
        last_seen = self._seen.get(key, row.last_seen.timestamp())
        entry = _Cached(
            account.user(), account.id, time.monotonic(), row.expires.timestamp(), last_seen
        )
        self._keep(self._sessions, key, entry, drops)
        return entry

    def _recheck_due(self, row: SessionRow) -> bool:
        if row.checked is None:
            return True
        age = (datetime.now(UTC) - row.checked).total_seconds()
        return age >= self.settings.oidc_recheck_seconds

    def forget(self, name: str) -> None:
        """Drop every cached token and session of ``name`` (after any change to them)."""
        for cache in (self._tokens, self._sessions):
            for key in [k for k, entry in cache.items() if entry.user.username == name]:
                del cache[key]
        self._dropped()

    def forget_all(self) -> None:
        """Drop every cached token, session and unknown digest; the next request of each
        reads the database. Called when the credentials generation moved."""
        self._tokens.clear()
        self._sessions.clear()
        self._unknown.clear()
        self._dropped()

    def _dropped(self) -> None:
        """Record that cached credentials were dropped, after the database write that
        revoked them: a lookup under way may have read the row before it, so it caches
        nothing (see :meth:`_keep`); and open WebSockets are checked again."""
        self._drops += 1
        credentials_changed()

    # -- logins ----------------------------------------------------------------------------

    async def check_password(self, username: str, password: str) -> User | None:
        """The user, when the password is theirs and the account enabled (argon2 off-loop)."""
        async with self.database.session() as db:
            account = await store.account_named(db, username)
        stored = account.password_hash if account is not None else None
        ok = await anyio.to_thread.run_sync(
            verify_password, stored or _DUMMY_HASH, password, limiter=self._limiter
        )
        if not ok or account is None or stored is None or not account.enabled:
            return None
        return account.user()

    async def open_session(
        self,
        user: User,
        *,
        agent: str,
        address: str,
        id_token: str | None = None,
        access_token: str | None = None,
        refresh_token: str | None = None,
    ) -> str:
        """Start a browser session; returns the cookie value (a new random id each login).

        A user whose credential has an end (``user.expires``: logging in with an expiring
        API token) gets a session that ends then too, not one that outlives the token.
        """
        session = credentials.new_session_id()
        now = datetime.now(UTC)
        expires = now + self._max_age
        if user.expires is not None:
            expires = min(expires, datetime.fromtimestamp(user.expires, UTC))
        async with self.database.session() as db:
            account = await store.account_named(db, user.username)
            if account is None:
                raise UserNotFound(user.username)
            await store.insert_session(
                db,
                digest=credentials.digest(session),
                account_id=account.id,
                created=now,
                last_seen=now,
                expires=expires,
                agent=agent[:512],
                address=address[:64],
                id_token=id_token,
                access_token=access_token,
                refresh_token=refresh_token,
                checked=now if access_token else None,
            )
        return session

    async def close_session(self, session: str) -> str | None:
        """End one session (logout); returns where to send the browser next (the OpenID
        issuer's logout page for OpenID sessions), or None."""
        key = credentials.digest(session)
        async with self.database.session() as db:
            row = await store.delete_session(db, key)
        self._sessions.pop(key, None)
        self._seen.pop(key, None)
        self._dropped()
        if row is not None and self.logout_url is not None:
            return self.logout_url(row)
        return None

    # -- administration --------------------------------------------------------------------

    async def add_user(
        self,
        name: str,
        *,
        admin: bool = False,
        groups: Sequence[str] = (),
        roles: Sequence[str] | None = None,
        password: str | None = None,
        display_name: str | None = None,
        source: str = "local",
    ) -> Account:
        """Create an account; raises :class:`UserExists` or :class:`BadUserName`."""
        check_name(name)
        password_hash = None
        if password is not None:
            password_hash = await anyio.to_thread.run_sync(hash_password, password)
        async with self.database.session() as db:
            if await store.account_named(db, name) is not None:
                raise UserExists(name)
            return await store.insert_account(
                db,
                name=name,
                display_name=display_name,
                groups=list(groups),
                roles=list(roles if roles is not None else self.settings.default_roles),
                admin=admin,
                enabled=True,
                password_hash=password_hash,
                source=source,
            )

    async def sync_external(
        self,
        name: str,
        *,
        display_name: str | None,
        avatar_url: str | None,
        groups: Sequence[str],
        admin: bool,
        source: str,
    ) -> Account:
        """Create or update an account an external issuer vouches for (at each login).

        Raises ``Forbidden`` when an account of that name belongs to another source: one with
        a password, or one another issuer vouched for. An issuer's user never takes over such
        an account by sharing its name; an administrator may create accounts without a
        password beforehand (to give roles), and those are the issuer's to log into.
        """
        check_name(name)
        async with self.database.session() as db:
            account = await store.account_named(db, name)
            if (
                account is not None
                and account.source != source
                and (account.password_hash is not None or account.source != "local")
            ):
                log.warning(
                    "refused a %s login as %r: that account's source is %s",
                    source,
                    name,
                    account.source,
                )
                raise Forbidden(
                    f"The account {name} belongs to another login method "
                    f"({account.source}); ask an administrator",
                    reason="LoginRefused",
                )
            if account is None:
                return await store.insert_account(
                    db,
                    name=name,
                    display_name=display_name,
                    avatar_url=avatar_url,
                    groups=list(groups),
                    roles=list(self.settings.default_roles),
                    admin=admin,
                    enabled=True,
                    password_hash=None,
                    source=source,
                )
            changes = _access_changes(account, groups=groups, admin=admin)
            shown = {
                "display_name": display_name or account.display_name,
                "avatar_url": avatar_url or account.avatar_url,
            }
            if any(getattr(account, key) != value for key, value in shown.items()):
                changes.update(shown)
            if changes:  # most logins change nothing: no write, no cache dropped
                await store.update_account(db, account.id, **changes)
        if changes:
            self.forget(name)
        return replace(
            account,
            display_name=display_name or account.display_name,
            avatar_url=avatar_url or account.avatar_url,
            groups=tuple(groups),
            admin=admin,
        )

    async def refresh_external(
        self,
        account_id: int,
        *,
        groups: Sequence[str],
        admin: bool,
        roles: Sequence[str] | None = None,
    ) -> None:
        """Apply what an issuer says of a logged-in user when it rechecks their session:
        their groups, admin flag and (from the Hub's groups) roles. Only what changed is
        written (compared as sets), which bumps the credentials generation, so a user
        demoted at the issuer loses their rights on every server within a poll interval."""
        async with self.database.session() as db:
            account = await store.account_by_id(db, account_id)
            if account is None:
                return
            changes = _access_changes(account, groups=groups, admin=admin, roles=roles)
            if not changes:
                return
            await store.update_account(db, account.id, **changes)
        log.info("the issuer changed %s's %s", account.name, " and ".join(sorted(changes)))
        self.forget(account.name)

    async def account(self, account_id: int) -> Account | None:
        """The account with this id, or None."""
        async with self.database.session() as db:
            return await store.account_by_id(db, account_id)

    async def users(self) -> list[Account]:
        """Every account, by name."""
        async with self.database.session() as db:
            return await store.all_accounts(db)

    async def get(self, name: str) -> Account:
        """One account; raises :class:`UserNotFound`."""
        async with self.database.session() as db:
            account = await store.account_named(db, name)
        if account is None:
            raise UserNotFound(name)
        return account

    async def set_enabled(self, name: str, enabled: bool) -> Account:
        """Enable or disable an account; takes effect at its next request."""
        async with self.database.session() as db:
            account = await store.account_named(db, name)
            if account is None:
                raise UserNotFound(name)
            await store.update_account(db, account.id, enabled=enabled)
        self.forget(name)
        self._unknown.clear()
        return replace(account, enabled=enabled)

    async def set_roles(
        self, name: str, *, roles: Sequence[str] | None = None, admin: bool | None = None
    ) -> Account:
        """Change an account's roles or admin flag; takes effect at its next request."""
        async with self.database.session() as db:
            account = await store.account_named(db, name)
            if account is None:
                raise UserNotFound(name)
            changes: dict[str, object] = {}
            if roles is not None:
                changes["roles"] = list(roles)
            if admin is not None:
                changes["admin"] = admin
            if changes:
                await store.update_account(db, account.id, **changes)
        self.forget(name)
        return replace(
            account,
            roles=tuple(roles) if roles is not None else account.roles,
            admin=admin if admin is not None else account.admin,
        )

    async def set_password(self, name: str, password: str | None) -> None:
        """Set or remove an account's password (argon2, off the event loop)."""
        password_hash = None
        if password is not None:
            password_hash = await anyio.to_thread.run_sync(hash_password, password)
        async with self.database.session() as db:
            account = await store.account_named(db, name)
            if account is None:
                raise UserNotFound(name)
            await store.update_account(db, account.id, password_hash=password_hash)

    async def issue_token(
        self,
        name: str,
        *,
        note: str = "",
        scopes: Sequence[str] | None = None,
        expires: datetime | None = None,
    ) -> tuple[str, TokenRow]:
        """Make an API token; the token itself is returned once and never stored."""
        limit = self.settings.token_max_days
        if limit:
            latest = datetime.now(UTC) + timedelta(days=limit)
            expires = latest if expires is None else min(expires, latest)
        token = credentials.new_token()
        async with self.database.session() as db:
            account = await store.account_named(db, name)
            if account is None:
                raise UserNotFound(name)
            row = await store.insert_token(
                db,
                digest=credentials.digest(token),
                account_id=account.id,
                hint=credentials.hint(token),
                note=note[:255],
                scopes=list(scopes) if scopes is not None else None,
                expires=expires,
            )
        self._unknown.pop(row.digest, None)
        return token, row

    async def tokens(self, name: str) -> list[TokenRow]:
        """The user's tokens, oldest first."""
        async with self.database.session() as db:
            account = await store.account_named(db, name)
            if account is None:
                raise UserNotFound(name)
            return await store.tokens_of(db, account.id)

    async def revoke_token(self, name: str, token_id: int) -> None:
        """Revoke one token, at once on this server."""
        async with self.database.session() as db:
            account = await store.account_named(db, name)
            if account is None:
                raise UserNotFound(name)
            found = await store.delete_token(db, account.id, token_id)
        if found is None:
            raise TokenNotFound(token_id)
        self._tokens.pop(found, None)
        self._used.pop(found, None)
        self._dropped()

    async def sessions(self, name: str) -> list[SessionRow]:
        """The user's open sessions, newest first."""
        async with self.database.session() as db:
            account = await store.account_named(db, name)
            if account is None:
                raise UserNotFound(name)
            return await store.sessions_of(db, account.id)

    async def revoke(self, name: str, *, tokens: bool = True) -> tuple[int, int]:
        """End every session of a user, and revoke their tokens unless ``tokens`` is False."""
        async with self.database.session() as db:
            account = await store.account_named(db, name)
            if account is None:
                raise UserNotFound(name)
            ended = await store.delete_sessions_of(db, account.id)
            revoked = await store.delete_tokens_of(db, account.id) if tokens else []
        for key in ended:
            self._seen.pop(key, None)
        for key in revoked:
            self._used.pop(key, None)
        self.forget(name)
        return len(ended), len(revoked)

    # -- background --------------------------------------------------------------------------

    async def flush(self) -> None:
        """Write the batched last-seen and last-used times, and purge expired rows (in a
        transaction of its own). When the times cannot be written they are put back, to be
        written by the next flush, and the error is raised."""
        seen, self._seen = self._seen, {}
        used, self._used = self._used, {}
        try:
            async with self.database.session() as db:
                if seen:
                    await store.touch_sessions(db, _as_times(seen))
                if used:
                    await store.touch_tokens(db, _as_times(used))
        except BaseException:
            _merge(self._seen, seen)
            _merge(self._used, used)
            raise
        async with self.database.session() as db:
            await store.purge_expired(db, datetime.now(UTC))

    async def run(self) -> None:
        """Flush every :data:`FLUSH_SECONDS` and watch the credentials generation, until
        cancelled; errors are logged, not fatal. Runs in the server's task group."""
        async with anyio.create_task_group() as group:
            group.start_soon(self._flush_regularly)
            if self.settings.revocation_poll_seconds > 0:
                group.start_soon(self.watch_revocations)

    async def _flush_regularly(self) -> None:
        while True:
            await anyio.sleep(FLUSH_SECONDS)
            try:
                await self.flush()
            except Exception:
                log.exception("could not record session and token activity")

    def on_generation(self, reload: Callable[[], Awaitable[bool | None]]) -> None:
        """Call ``reload`` whenever :meth:`check_generation` sees the generation move (it
        should build its new state and then swap it in, and raise when it cannot). A
        ``reload`` that returns False did not bring its state up to date (a local change
        overlapped it): the generation then counts as unread, and the next tick reloads."""
        self._reloads.append(reload)

    async def check_generation(self) -> bool:
        """Read the credentials generation; drop the whole cache and run the
        :meth:`on_generation` callbacks when it moved since the last read (or on the first
        read). Returns whether it dropped. Raises like
        :meth:`~junction.database.Database.session` when the database cannot be read, or
        like a callback; the generation then counts as unread, to be tried again."""
        async with self.database.session() as db:
            # A plain read: on SQLite it must not take the write lock every tick. Shielded
            # like the session's statements (see ShieldedSession), as the server's exit
            # cancels this task at any moment.
            with anyio.CancelScope(shield=True):
                await db.connection(execution_options={"sqlite_begin": "DEFERRED"})
            current = await store.read_generation(db)
        if current == self._generation:
            return False
        self.forget_all()
        current_everywhere = True
        for reload in self._reloads:
            if await reload() is False:
                current_everywhere = False
        if current_everywhere:
            self._generation = current
        return True

    async def watch_revocations(self) -> None:
        """Call :meth:`check_generation` every ``users.revocation_poll_seconds`` until
        cancelled. A database that cannot be read is logged once per outage, as a warning,
        and read again at the next tick; the task never ends on it."""
        failing = False
        while True:
            try:
                await self.check_generation()
            except Exception as exc:
                if not failing:
                    log.warning(
                        "cannot read the credentials generation (%s); revocations made by "
                        "other servers apply within users.cache_seconds until it can be read",
                        type(exc).__name__,
                    )
                failing = True
            else:
                if failing:
                    log.info("the credentials generation can be read again")
                failing = False
            await anyio.sleep(self.settings.revocation_poll_seconds)


def _access_changes(
    account: Account, *, groups: Sequence[str], admin: bool, roles: Sequence[str] | None = None
) -> dict[str, object]:
    """What an issuer says of ``account`` that differs from it: groups, admin flag, roles
    (None: not said). Sets are compared as sets, as issuers send them in no fixed order;
    writing an unchanged one would bump the credentials generation, and so empty every
    server's cache, at each login."""
    changes: dict[str, object] = {}
    if set(groups) != set(account.groups):
        changes["groups"] = list(groups)
    if admin != account.admin:
        changes["admin"] = admin
    if roles is not None and set(roles) != set(account.roles):
        changes["roles"] = list(roles)
    return changes


def _merge(into: dict[str, float], batch: dict[str, float]) -> None:
    """Put an unwritten batch of times back into ``into``, keeping the newest of each."""
    for key, moment in batch.items():
        if moment > into.get(key, 0.0):
            into[key] = moment


def _as_times(moments: dict[str, float]) -> dict[str, datetime]:
    return {key: datetime.fromtimestamp(moment, UTC) for key, moment in moments.items()}
