"""The users plugin's tables (created and changed by the revisions in ``migrations/``).

::

    users_accounts   one row per person: profile, groups, roles, enabled, password hash
      ├── users_sessions  browser sessions: digest of the cookie id, expiry, OpenID tokens
      │                   (ID token for logout, access and refresh tokens for re-checks)
      └── users_tokens    API tokens: digest, scopes, expiry, last use
    users_shares     folders shared with a user or a group, read-only or read-write
    users_generation a counter (one row, from the first bump on) bumped by every change
                     that revokes a token or a session; every server polls it to drop
                     its cache of checked ones

Deleting an account deletes its sessions and tokens (``ON DELETE CASCADE``).
"""

from __future__ import annotations

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    Column,
    DateTime,
    ForeignKey,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
)

__all__ = ["accounts", "generation", "metadata", "sessions", "shares", "tokens"]

metadata = MetaData()

accounts = Table(
    "users_accounts",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("name", String(255), nullable=False, unique=True),
    Column("display_name", String(255)),
    Column("initials", String(8)),
    Column("color", String(32)),
    Column("avatar_url", Text),
    Column("groups", JSON, nullable=False),
    Column("roles", JSON, nullable=False),
    Column("admin", Boolean, nullable=False),
    Column("enabled", Boolean, nullable=False),
    Column("password_hash", Text),
    Column("source", String(16), nullable=False),
    Column("created", DateTime(timezone=True), nullable=False),
)

sessions = Table(
    "users_sessions",
    metadata,
    Column("digest", String(64), primary_key=True),
    Column(
        "account_id",
        Integer,
        ForeignKey("users_accounts.id", ondelete="CASCADE"),
        nullable=False,
        index=True,
    ),
    Column("created", DateTime(timezone=True), nullable=False),
    Column("last_seen", DateTime(timezone=True), nullable=False),
    Column("expires", DateTime(timezone=True), nullable=False),
    Column("agent", String(512), nullable=False),
    Column("address", String(64), nullable=False),
    Column("id_token", Text),
    Column("access_token", Text),
    Column("refresh_token", Text),
    Column("checked", DateTime(timezone=True)),
)

tokens = Table(
    "users_tokens",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("digest", String(64), nullable=False, unique=True),
    Column(
        "account_id",
        Integer,
        ForeignKey("users_accounts.id", ondelete="CASCADE"),
        nullable=False,
        index=True,
    ),
    Column("hint", String(16), nullable=False),
    Column("note", String(255), nullable=False),
    Column("scopes", JSON),
    Column("created", DateTime(timezone=True), nullable=False),
    Column("expires", DateTime(timezone=True)),
    Column("last_used", DateTime(timezone=True)),
)

shares = Table(
    "users_shares",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("path", Text, nullable=False),
    Column("kind", String(8), nullable=False),  # "user" or "group"
    Column("target", String(255), nullable=False),
    Column("access", String(8), nullable=False),  # "read" or "write"
    Column("created_by", String(255), nullable=False),
    Column("created", DateTime(timezone=True), nullable=False),
    UniqueConstraint("path", "kind", "target", name="uq_users_shares_target"),
)

generation = Table(
    "users_generation",
    metadata,
    Column("id", Integer, primary_key=True),  # always 1
    Column("generation", BigInteger, nullable=False),
)
