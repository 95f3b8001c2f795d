"""Reading and writing the users plugin's tables; no caching here (see ``directory.py``).

Every function takes an open transaction (``Database.session()``), so callers group several
changes into one commit.

Every write that takes a credential away (a session or token deleted; an account disabled,
its roles, admin flag or groups changed) bumps the credentials generation
(``users_generation``) in the same transaction, whoever calls it: a server's routes, a
login's re-check, or ``junction users ...`` in another process. Servers poll the counter to
drop their caches (``directory.py``). Shares are made and withdrawn the same way, so
every server reloads them at its next poll. The bump comes before the write it announces, so
every such transaction locks the counter row first; the session and token rows a transaction
changes are then locked in digest order (touches and multi-row deletes alike), so no two of
them can deadlock on PostgreSQL.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import ColumnElement, RowMapping, Table, delete, insert, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from junction.auth.identity import User
from junction.plugins.users.schema import accounts, generation, sessions, shares, tokens

__all__ = ["REVOKING_COLUMNS", "Account", "SessionRow", "TokenRow", "as_utc"]

REVOKING_COLUMNS = frozenset({"enabled", "roles", "admin", "groups"})
"""Account columns whose change may take away what a cached credential allows."""


def as_utc(moment: datetime | None) -> datetime | None:
    """A stored time as an aware UTC datetime (SQLite returns naive ones)."""
    if moment is None:
        return None
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


@dataclass(frozen=True)
class Account:
    """One row of ``users_accounts``."""

    id: int
    name: str
    display_name: str | None
    initials: str | None
    color: str | None
    avatar_url: str | None
    groups: tuple[str, ...]
    roles: tuple[str, ...]
    admin: bool
    enabled: bool
    password_hash: str | None
    source: str
    created: datetime

    @classmethod
    def from_row(cls, row: RowMapping | Mapping[str, Any]) -> Account:
        """Build from a ``users_accounts`` row mapping."""
        return cls(
            id=row["id"],
            name=row["name"],
            display_name=row["display_name"],
            initials=row["initials"],
            color=row["color"],
            avatar_url=row["avatar_url"],
            groups=tuple(row["groups"] or ()),
            roles=tuple(row["roles"] or ()),
            admin=bool(row["admin"]),
            enabled=bool(row["enabled"]),
            password_hash=row["password_hash"],
            source=row["source"],
            created=as_utc(row["created"]) or datetime.now(UTC),
        )

    def user(self, scopes: Sequence[str] | None = None) -> User:
        """The :class:`User` this account stands for (``scopes`` of the token used)."""
        return User.named(
            self.name,
            display_name=self.display_name,
            initials=self.initials,
            color=self.color,
            avatar_url=self.avatar_url,
            groups=self.groups,
            roles=self.roles,
            admin=self.admin,
            scopes=tuple(scopes) if scopes is not None else None,
        )


@dataclass(frozen=True)
class SessionRow:
    """One row of ``users_sessions``."""

    digest: str
    account_id: int
    created: datetime
    last_seen: datetime
    expires: datetime
    agent: str
    address: str
    id_token: str | None
    access_token: str | None
    checked: datetime | None
    refresh_token: str | None = None


@dataclass(frozen=True)
class TokenRow:
    """One row of ``users_tokens``."""

    id: int
    digest: str
    account_id: int
    hint: str
    note: str
    scopes: tuple[str, ...] | None
    created: datetime
    expires: datetime | None
    last_used: datetime | None


def _session(row: RowMapping | Mapping[str, Any]) -> SessionRow:
    return SessionRow(
        digest=row["digest"],
        account_id=row["account_id"],
        created=as_utc(row["created"]) or datetime.now(UTC),
        last_seen=as_utc(row["last_seen"]) or datetime.now(UTC),
        expires=as_utc(row["expires"]) or datetime.now(UTC),
        agent=row["agent"],
        address=row["address"],
        id_token=row["id_token"],
        access_token=row["access_token"],
        checked=as_utc(row["checked"]),
        refresh_token=row["refresh_token"],
    )


def _token(row: RowMapping | Mapping[str, Any]) -> TokenRow:
    return TokenRow(
        id=row["id"],
        digest=row["digest"],
        account_id=row["account_id"],
        hint=row["hint"],
        note=row["note"],
        scopes=tuple(row["scopes"]) if row["scopes"] is not None else None,
        created=as_utc(row["created"]) or datetime.now(UTC),
        expires=as_utc(row["expires"]),
        last_used=as_utc(row["last_used"]),
    )


# -- accounts ------------------------------------------------------------------------------


async def account_named(db: AsyncSession, name: str) -> Account | None:
    """The account called ``name``, or None."""
    row = (await db.execute(select(accounts).where(accounts.c.name == name))).mappings().first()
    return Account.from_row(row) if row is not None else None


async def account_by_id(db: AsyncSession, account_id: int) -> Account | None:
    """The account with this id, or None."""
    query = select(accounts).where(accounts.c.id == account_id)
    row = (await db.execute(query)).mappings().first()
    return Account.from_row(row) if row is not None else None


async def all_accounts(db: AsyncSession) -> list[Account]:
    """Every account, by name."""
    rows = (await db.execute(select(accounts).order_by(accounts.c.name))).mappings()
    return [Account.from_row(row) for row in rows]


async def insert_account(db: AsyncSession, **values: Any) -> Account:
    """Create an account; ``values`` are column values (name, roles, ...)."""
    values.setdefault("created", datetime.now(UTC))
    values["groups"] = list(values.get("groups", ()))
    values["roles"] = list(values.get("roles", ()))
    await db.execute(insert(accounts).values(**values))
    account = await account_named(db, values["name"])
    assert account is not None
    return account


async def update_account(db: AsyncSession, account_id: int, **values: Any) -> None:
    """Change some columns of an account; bumps the credentials generation when one of
    :data:`REVOKING_COLUMNS` is among them."""
    for key in ("groups", "roles"):
        if key in values:
            values[key] = list(values[key])
    if REVOKING_COLUMNS.intersection(values):
        await bump_generation(db)
    await db.execute(update(accounts).where(accounts.c.id == account_id).values(**values))


# -- sessions ------------------------------------------------------------------------------


async def insert_session(db: AsyncSession, **values: Any) -> None:
    """Record a new browser session (values: digest, account_id, times, agent, ...)."""
    await db.execute(insert(sessions).values(**values))


async def session_with_account(db: AsyncSession, digest: str) -> tuple[SessionRow, Account] | None:
    """A session and its account, by the digest of the cookie id."""
    query = (
        select(sessions, accounts)
        .join(accounts, accounts.c.id == sessions.c.account_id)
        .where(sessions.c.digest == digest)
    )
    row = (await db.execute(query)).mappings().first()
    if row is None:
        return None
    account = {c.name: row[accounts.c[c.name]] for c in accounts.columns}
    session = {c.name: row[sessions.c[c.name]] for c in sessions.columns}
    return _session(session), Account.from_row(account)


async def update_session(db: AsyncSession, digest: str, **values: Any) -> None:
    """Change some columns of a session."""
    await db.execute(update(sessions).where(sessions.c.digest == digest).values(**values))


async def delete_session(db: AsyncSession, digest: str) -> SessionRow | None:
    """Forget a session (bumping the generation); returns it, or None when there was none."""
    query = select(sessions).where(sessions.c.digest == digest)
    row = (await db.execute(query)).mappings().first()
    if row is None:
        return None
    await bump_generation(db)
    await db.execute(delete(sessions).where(sessions.c.digest == digest))
    return _session(row)


async def _lock_rows(db: AsyncSession, table: Table, where: ColumnElement[bool]) -> list[str]:
    """The digests of ``table``'s rows matching ``where``, locked in digest order on
    PostgreSQL (SQLite runs one writer at a time anyway), so that deleting them cannot
    deadlock with another transaction that locks some of them in the same order."""
    query = select(table.c.digest).where(where).order_by(table.c.digest)
    if db.get_bind().dialect.name == "postgresql":
        query = query.with_for_update()
    return list((await db.execute(query)).scalars())


async def _delete_locked(
    db: AsyncSession, table: Table, where: ColumnElement[bool], *, bump: bool
) -> list[str]:
    """Delete ``table``'s rows matching ``where``; returns their digests. With ``bump`` the
    generation moves first (when there is anything to delete), then the rows are locked in
    digest order, as :func:`delete_session` bumps before it deletes."""
    query = select(table.c.digest).where(where).limit(1)
    if (await db.execute(query)).first() is None:
        return []
    if bump:
        await bump_generation(db)
    digests = await _lock_rows(db, table, where)
    if digests:
        await db.execute(delete(table).where(table.c.digest.in_(digests)))
    return digests


async def delete_sessions_of(db: AsyncSession, account_id: int) -> list[str]:
    """Forget every session of an account (bumping the generation); returns their digests."""
    return await _delete_locked(db, sessions, sessions.c.account_id == account_id, bump=True)


async def sessions_of(db: AsyncSession, account_id: int) -> list[SessionRow]:
    """Every session of an account, newest first."""
    query = (
        select(sessions)
        .where(sessions.c.account_id == account_id)
        .order_by(sessions.c.created.desc())
    )
    return [_session(row) for row in (await db.execute(query)).mappings()]


async def touch_sessions(db: AsyncSession, seen: Mapping[str, datetime]) -> None:
    """Record when sessions were last used (batched by the directory), in digest order."""
    for digest in sorted(seen):
        await update_session(db, digest, last_seen=seen[digest])


async def purge_expired(db: AsyncSession, now: datetime) -> None:
    """Delete sessions past their absolute expiry and tokens past theirs (no bump: they
    are refused by their expiry already). Best in a transaction of its own, so that its
    locks are taken in one digest order."""
    await _delete_locked(db, sessions, sessions.c.expires < now, bump=False)
    await _delete_locked(db, tokens, tokens.c.expires < now, bump=False)


# -- tokens --------------------------------------------------------------------------------


async def insert_token(db: AsyncSession, **values: Any) -> TokenRow:
    """Record a new API token (values: digest, account_id, hint, note, scopes, expires)."""
    values.setdefault("created", datetime.now(UTC))
    await db.execute(insert(tokens).values(**values))
    row = (
        (await db.execute(select(tokens).where(tokens.c.digest == values["digest"])))
        .mappings()
        .first()
    )
    assert row is not None
    return _token(row)


async def token_with_account(db: AsyncSession, digest: str) -> tuple[TokenRow, Account] | None:
    """A token and its account, by the token's digest."""
    query = (
        select(tokens, accounts)
        .join(accounts, accounts.c.id == tokens.c.account_id)
        .where(tokens.c.digest == digest)
    )
    row = (await db.execute(query)).mappings().first()
    if row is None:
        return None
    account = {c.name: row[accounts.c[c.name]] for c in accounts.columns}
    token = {c.name: row[tokens.c[c.name]] for c in tokens.columns}
    return _token(token), Account.from_row(account)


async def tokens_of(db: AsyncSession, account_id: int) -> list[TokenRow]:
    """Every token of an account, oldest first."""
    query = select(tokens).where(tokens.c.account_id == account_id).order_by(tokens.c.id)
    return [_token(row) for row in (await db.execute(query)).mappings()]


async def delete_token(db: AsyncSession, account_id: int, token_id: int) -> str | None:
    """Forget one token of an account (bumping the generation); returns its digest, or None
    when there was none."""
    query = select(tokens.c.digest).where(
        tokens.c.id == token_id, tokens.c.account_id == account_id
    )
    found = (await db.execute(query)).scalar()
    if found is not None:
        await bump_generation(db)
        await db.execute(delete(tokens).where(tokens.c.id == token_id))
    return found


async def delete_tokens_of(db: AsyncSession, account_id: int) -> list[str]:
    """Forget every token of an account (bumping the generation); returns their digests."""
    return await _delete_locked(db, tokens, tokens.c.account_id == account_id, bump=True)


async def touch_tokens(db: AsyncSession, used: Mapping[str, datetime]) -> None:
    """Record when tokens were last used (batched by the directory), in digest order."""
    for key in sorted(used):
        await db.execute(update(tokens).where(tokens.c.digest == key).values(last_used=used[key]))


# -- shares --------------------------------------------------------------------------------


async def all_shares(db: AsyncSession) -> list[RowMapping]:
    """Every row of ``users_shares``."""
    return list((await db.execute(select(shares))).mappings().all())


async def replace_share(db: AsyncSession, **values: Any) -> int:
    """Share a folder (values: path, kind, target, access, created_by, created), replacing
    an earlier share of it with the same target; bumps the generation, so every server
    reloads its shares. Returns the new share's id."""
    await bump_generation(db)
    await db.execute(
        delete(shares).where(
            shares.c.path == values["path"],
            shares.c.kind == values["kind"],
            shares.c.target == values["target"],
        )
    )
    result = await db.execute(insert(shares).values(**values).returning(shares.c.id))
    return int(result.scalar_one())


async def delete_share(db: AsyncSession, share_id: int) -> None:
    """Withdraw a share (bumping the generation, so every server reloads its shares)."""
    await bump_generation(db)
    await db.execute(delete(shares).where(shares.c.id == share_id))


# -- credentials generation ----------------------------------------------------------------


async def bump_generation(db: AsyncSession) -> None:
    """Move the credentials generation on, so every server drops its cache of checked
    tokens and sessions at its next poll; called by the writes above, before they write."""
    # An upsert, as the row does not exist until the first bump (a new database's tables
    # are made from schema.py, not by replaying the revisions).
    from sqlalchemy.dialects import postgresql, sqlite  # here: PostgreSQL's is 2.4 MB

    dialect = db.get_bind().dialect.name
    insert_into: Any = postgresql.insert if dialect == "postgresql" else sqlite.insert
    await db.execute(
        insert_into(generation)
        .values(id=1, generation=1)
        .on_conflict_do_update(
            index_elements=[generation.c.id], set_={"generation": generation.c.generation + 1}
        )
    )


async def read_generation(db: AsyncSession) -> int:
    """The credentials generation (one primary-key lookup; polled by every server); 0 until
    the first bump."""
    value = (await db.execute(select(generation.c.generation).where(generation.c.id == 1))).scalar()
    return int(value or 0)
