"""The sessions plugin's table: one row per session, holding its kernel's id only.

``seq`` keeps the order sessions were made in, which :meth:`SessionStore.list` returns.
"""

from __future__ import annotations

from pathlib import Path

from sqlalchemy import BigInteger, Column, Integer, MetaData, String, Table, Text

from junction.database import PluginTables

__all__ = ["SESSIONS_TABLE", "TABLES"]

metadata = MetaData()

SESSIONS_TABLE = Table(
    "sessions_sessions",
    metadata,
    Column("id", String(64), primary_key=True),
    Column("seq", BigInteger().with_variant(Integer, "sqlite"), nullable=False, index=True),
    Column("path", Text, nullable=False, index=True),
    Column("name", Text, nullable=True),
    Column("type", String(255), nullable=False),
    Column("kernel_id", String(64), nullable=False, index=True),
)

TABLES = PluginTables(metadata=metadata, migrations=Path(__file__).parent / "migrations")
