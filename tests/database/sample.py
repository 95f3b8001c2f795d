"""A sample plugin's tables and a child process that migrates them (for the lock tests)."""

from __future__ import annotations

import json
import logging
import sys
from pathlib import Path

import anyio
from sqlalchemy import Column, Integer, MetaData, Table, Text

from junction.database import Database, PluginTables, upgrade

__all__ = ["MIGRATIONS", "NOTES", "TABLES", "main"]

MIGRATIONS = Path(__file__).parent / "sample_migrations"
metadata = MetaData()
NOTES = Table(
    "sample_notes",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("text", Text, nullable=False),
)
TABLES = PluginTables(metadata=metadata, migrations=MIGRATIONS)


def main(url: str, migrations: str) -> None:
    """Migrate the sample plugin ``sample`` at ``url``; print what ran as JSON."""
    logging.basicConfig(level=logging.INFO, stream=sys.stderr, format="%(message)s")
    tables = PluginTables(metadata=metadata, migrations=Path(migrations))

    async def run() -> list[str]:
        database = Database(url)
        try:
            return await upgrade(database, [("sample", tables)])
        finally:
            await database.close()

    migrated = anyio.run(run)
    print(json.dumps({"migrated": migrated, "alembic": "alembic" in sys.modules}), flush=True)


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
