"""``PluginTables``: what a plugin declares to own tables in the shared database."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlalchemy import MetaData

__all__ = ["PluginTables", "upsert", "version_table"]


@dataclass(frozen=True)
class PluginTables:
    """A plugin's tables and the Alembic revisions that create and change them.

    ``metadata`` holds the plugin's tables, each named ``<plugin>_<what>`` (``lab_settings``,
    ``sessions_sessions``) so plugins never collide. ``migrations`` is a folder of Alembic
    revision scripts for this plugin alone (no ``env.py``: the core runs them), whose applied
    revision is kept in the plugin's own version table, ``alembic_version_<plugin>``.
    """

    metadata: MetaData
    migrations: Path


def version_table(plugin: str) -> str:
    """The table recording which of ``plugin``'s revisions are applied."""
    return "alembic_version_" + re.sub(r"\W", "_", plugin)


def upsert(dialect: str, table: Any, key: str, values: Mapping[str, Any]) -> Any:
    """An INSERT of ``values`` that updates the row instead when one with the same ``key``
    exists, keeping its ``created`` column; for SQLite and PostgreSQL alike."""
    from sqlalchemy.dialects import postgresql, sqlite

    insert: Any = postgresql.insert if dialect == "postgresql" else sqlite.insert
    statement = insert(table).values(**values)
    changed = {name: value for name, value in values.items() if name not in (key, "created")}
    return statement.on_conflict_do_update(index_elements=[key], set_=changed)
