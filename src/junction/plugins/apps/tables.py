"""The apps plugin's table: one row per app definition (processes are not stored)."""

from __future__ import annotations

from pathlib import Path

from sqlalchemy import JSON, Column, MetaData, String, Table, Text

from junction.database import PluginTables

__all__ = ["APPS_TABLE", "TABLES"]

metadata = MetaData()

APPS_TABLE = Table(
    "apps_apps",
    metadata,
    Column("id", String(64), primary_key=True),
    Column("owner", Text, nullable=False, index=True),
    Column("created", String(40), nullable=False),
    Column("spec", JSON, nullable=False),
    Column("sharing", JSON, nullable=False),
)

TABLES = PluginTables(metadata=metadata, migrations=Path(__file__).parent / "migrations")
