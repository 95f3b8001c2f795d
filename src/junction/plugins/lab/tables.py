"""The lab plugin's tables: user settings, workspaces, and which one-time imports ran.

Settings keep the JSON5 text exactly as the user saved it (comments included); workspaces
keep the JSON the UI sent, under their escaped id (the name their file had: any id fits, even
one holding characters PostgreSQL text refuses, such as NUL).

Both are kept per user (the ``user`` column). Single-user mode has one user, ``""``, whose
rows are keyed by the plain plugin id or workspace key; another user's rows are keyed
``~<user>/<id>`` (:func:`stored_key`), which no plugin id or escaped workspace id can be.
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

from sqlalchemy import Column, DateTime, MetaData, String, Table, Text

from junction.auth.middleware import REQUEST_USER
from junction.database import PluginTables

__all__ = ["IMPORTS", "SETTINGS", "TABLES", "WORKSPACES", "as_utc", "stored_key", "user_key"]

metadata = MetaData()

SETTINGS = Table(
    "lab_settings",
    metadata,
    Column("plugin_id", String(255), primary_key=True),
    Column("raw", Text, nullable=False),
    Column("created", DateTime(timezone=True), nullable=False),
    Column("last_modified", DateTime(timezone=True), nullable=False),
    Column("user", String(255), nullable=False, server_default="", index=True),
)

WORKSPACES = Table(
    "lab_workspaces",
    metadata,
    Column("key", String(255), primary_key=True),
    Column("workspace", Text, nullable=False),
    Column("created", DateTime(timezone=True), nullable=False),
    Column("last_modified", DateTime(timezone=True), nullable=False),
    Column("user", String(255), nullable=False, server_default="", index=True),
)

IMPORTS = Table(
    "lab_imports",
    metadata,
    Column("name", String(64), primary_key=True),
    Column("source", Text, nullable=False),
    Column("done", DateTime(timezone=True), nullable=False),
)

TABLES = PluginTables(metadata=metadata, migrations=Path(__file__).parent / "migrations")


def as_utc(moment: datetime) -> datetime:
    """A time read back from a table, in UTC (SQLite returns it without a timezone)."""
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


def user_key() -> str:
    """Whose settings and workspaces the current request reads: ``""`` in single-user mode
    (and outside requests), else the username of a user the ``users`` plugin manages."""
    user = REQUEST_USER.get()
    if user is None or not (user.roles or user.admin):
        return ""
    return user.username


def stored_key(user: str, key: str) -> str:
    """The primary key of ``user``'s row for ``key`` (a plugin id or an escaped workspace
    id): ``key`` itself for the single user ``""``."""
    return f"~{user}/{key}" if user else key
