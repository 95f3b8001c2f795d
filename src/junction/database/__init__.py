"""The database every plugin shares: SQLite embedded by default, PostgreSQL for deployments.

Map of the package:

- ``engine.py``: :class:`Database` (the engine, :meth:`~Database.session` transactions, the
  mapping of driver errors to ``DatabaseUnavailable`` and :class:`DatabaseFull`);
- ``tables.py``: :class:`PluginTables`, what a plugin declares to own tables;
- ``migrations.py``: each plugin's Alembic revisions, applied at startup (and by
  ``junction db upgrade``) under a lock so one server migrates at a time.

The core provides the :class:`Database` to every plugin as :data:`~junction.services.DATABASE`
and migrates every enabled plugin's tables before the first plugin starts.
"""

from __future__ import annotations

from junction.database.engine import Database, DatabaseFull, masked_url, url_secrets
from junction.database.migrations import pending, upgrade
from junction.database.tables import PluginTables, upsert, version_table

__all__ = [
    "Database",
    "DatabaseFull",
    "PluginTables",
    "masked_url",
    "pending",
    "upgrade",
    "upsert",
    "url_secrets",
    "version_table",
]
