"""The lab plugin's tables: user settings, workspaces, and which one-time imports ran.

Settings keep the JSON5 text exactly as the user saved it (comments included); workspaces
keep the JSON the UI sent, under their escaped id (the name their file had: any id fits, even
one holding characters PostgreSQL text refuses, such as NUL).
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

from sqlalchemy import Column, DateTime, MetaData, String, Table, Text

from junction.database import PluginTables

__all__ = ["IMPORTS", "SETTINGS", "TABLES", "WORKSPACES", "as_utc"]

metadata = MetaData()

SETTINGS = Table(
    "lab_settings",
    metadata,
    Column("plugin_id", String(255), primary_key=True),
    Column("raw", Text, nullable=False),
    Column("created", DateTime(timezone=True), nullable=False),
    Column("last_modified", DateTime(timezone=True), nullable=False),
)

WORKSPACES = Table(
    "lab_workspaces",
    metadata,
    Column("key", String(255), primary_key=True),
    Column("workspace", Text, nullable=False),
    Column("created", DateTime(timezone=True), nullable=False),
    Column("last_modified", DateTime(timezone=True), nullable=False),
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
