"""The jobs plugin's table: one row per job (``jobs_jobs``).

``server`` names the process running the job (``host:pid:nonce``) and ``heartbeat`` is when it
last said so; ``cancel`` asks that process, whichever received the ``DELETE``, to stop it.
"""

from __future__ import annotations

from pathlib import Path

from sqlalchemy import BigInteger, Boolean, Column, Float, Integer, MetaData, String, Table, Text

from junction.database import PluginTables

__all__ = ["JOBS_TABLE", "TABLES"]

metadata = MetaData()

JOBS_TABLE = Table(
    "jobs_jobs",
    metadata,
    Column("id", String(32), primary_key=True),
    Column("seq", BigInteger().with_variant(Integer, "sqlite"), nullable=False, index=True),
    Column("owner", Text, nullable=False, index=True),
    Column("kind", String(32), nullable=False),
    Column("status", String(16), nullable=False, index=True),
    Column("path", Text, nullable=False),
    Column("destination", Text, nullable=True),
    Column("created", Float, nullable=False),
    Column("updated", Float, nullable=False),
    Column("done", BigInteger, nullable=False),
    Column("total", BigInteger, nullable=True),
    Column("error", Text, nullable=True),
    Column("result", Text, nullable=True),
    Column("server", Text, nullable=False),
    Column("heartbeat", Float, nullable=False),
    Column("cancel", Boolean, nullable=False),
)

TABLES = PluginTables(metadata=metadata, migrations=Path(__file__).parent / "migrations")
