"""The uploads plugin's table: one row per resumable upload (``uploads_uploads``).

``offset`` counts the bytes of the partial file known to be on disk (written and flushed
with ``fsync``); ``expires`` moves forward with every ``PATCH``.
"""

from __future__ import annotations

from pathlib import Path

from sqlalchemy import BigInteger, Boolean, Column, Float, MetaData, String, Table, Text

from junction.database import PluginTables

__all__ = ["TABLES", "UPLOADS_TABLE"]

metadata = MetaData()

UPLOADS_TABLE = Table(
    "uploads_uploads",
    metadata,
    Column("id", String(32), primary_key=True),
    Column("owner", Text, nullable=False, index=True),
    Column("destination", Text, nullable=False),
    Column("length", BigInteger, nullable=False),
    Column("offset", BigInteger, nullable=False),
    Column("overwrite", Boolean, nullable=False),
    Column("metadata", Text, nullable=False),
    Column("created", Float, nullable=False),
    Column("expires", Float, nullable=False, index=True),
    Column("completed", Float, nullable=True),
)

TABLES = PluginTables(metadata=metadata, migrations=Path(__file__).parent / "migrations")
