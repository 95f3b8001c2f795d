"""The collaboration plugin's tables.

``collaboration_files`` gives every file a room was opened for a stable id (the room's
name), kept across restarts and moved with renames made through Junction.
``synced_hash`` is the hash of the file as the room last loaded or saved it, and ``dirty``
whether the room holds edits not saved since: on reopening, they tell an edit made outside
Junction while the room was closed from the room's own unsaved edits.

``collaboration_updates`` holds every Yjs update of every room, in order; every
``checkpoint_every`` updates they are merged into one row.

``collaboration_leases`` says which server process owns each open room (``owner``, its
``sessionId``) until ``expires_at`` (Unix time): the owner renews it while the room is
open and drops it when the room closes; another server may take it once it expired, or at
once when the owner ran on the same ``host`` and its ``pid`` is gone.
"""

from __future__ import annotations

from pathlib import Path

from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    Float,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Table,
    Text,
)

from junction.database import PluginTables

__all__ = ["FILES_TABLE", "LEASES_TABLE", "TABLES", "UPDATES_TABLE"]

metadata = MetaData()

FILES_TABLE = Table(
    "collaboration_files",
    metadata,
    Column("id", String(36), primary_key=True),
    Column("path", Text, nullable=False, unique=True),
    Column("synced_hash", String(128), nullable=True),
    Column("dirty", Boolean, nullable=False, default=False),
)

UPDATES_TABLE = Table(
    "collaboration_updates",
    metadata,
    Column(
        "seq", BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True
    ),
    Column("room", String(255), nullable=False, index=True),
    Column("data", LargeBinary, nullable=False),
    Column("created", Float, nullable=False),
)

LEASES_TABLE = Table(
    "collaboration_leases",
    metadata,
    Column("room_id", String(255), primary_key=True),
    Column("owner", String(36), nullable=False),
    Column("expires_at", Float, nullable=False),
    Column("host", String(255), nullable=False, server_default=""),
    Column("pid", Integer, nullable=False, server_default="0"),
)

TABLES = PluginTables(metadata=metadata, migrations=Path(__file__).parent / "migrations")
