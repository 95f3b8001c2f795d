"""App definitions in the shared database (table ``apps_apps``); one transaction per call."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import delete, insert, select, update

from junction.database import Database
from junction.plugins.apps.tables import APPS_TABLE

__all__ = ["AppRecord", "TableAppStore"]


@dataclass
class AppRecord:
    """A stored app: ``spec`` holds name, framework, path, command, env, ready_path and
    start_timeout; ``sharing`` a :class:`~junction.plugins.apps.models.Sharing` as a dict."""

    id: str
    owner: str
    created: str
    spec: dict[str, Any]
    sharing: dict[str, Any] = field(default_factory=dict)


class TableAppStore:
    """App records over ``apps_apps``; raises DatabaseUnavailable when it cannot reach it."""

    def __init__(self, database: Database) -> None:
        self._database = database

    async def add(self, record: AppRecord) -> None:
        """Keep a new record (replacing one with the same id)."""
        async with self._database.session() as session:
            await session.execute(delete(APPS_TABLE).where(APPS_TABLE.c.id == record.id))
            await session.execute(
                insert(APPS_TABLE).values(
                    id=record.id,
                    owner=record.owner,
                    created=record.created,
                    spec=record.spec,
                    sharing=record.sharing,
                )
            )

    async def all(self) -> list[AppRecord]:
        """Every record, oldest first."""
        async with self._database.session() as session:
            rows = await session.execute(select(APPS_TABLE).order_by(APPS_TABLE.c.created))
            return [
                AppRecord(r.id, r.owner, r.created, dict(r.spec), dict(r.sharing or {}))
                for r in rows
            ]

    async def set_sharing(self, app_id: str, sharing: dict[str, Any]) -> None:
        """Replace a record's sharing."""
        async with self._database.session() as session:
            await session.execute(
                update(APPS_TABLE).where(APPS_TABLE.c.id == app_id).values(sharing=sharing)
            )

    async def remove(self, app_id: str) -> None:
        """Forget a record, if kept."""
        async with self._database.session() as session:
            await session.execute(delete(APPS_TABLE).where(APPS_TABLE.c.id == app_id))
