"""The one-time import of settings and workspace files into the lab's tables.

Before the database, user settings were ``<user-settings dir>/<package>/<plugin>
.jupyterlab-settings`` files and workspaces ``<workspaces dir>/<id>.jupyterlab-workspace``
files (JupyterLab's own layout). The first time the lab starts on a database whose table is
empty, those files are copied in, keeping their times; a row in ``lab_imports`` records that
the import ran, so it never runs again (files edited later are not read). The files are left
where they are.

Two servers starting at once cannot both import: the ``lab_imports`` row is written in the
same transaction, and its primary key lets only one commit.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import anyio
from sqlalchemy import func, insert, select
from sqlalchemy.exc import IntegrityError

from junction.database import Database
from junction.plugins.lab.service import SettingsNotFound
from junction.plugins.lab.tables import IMPORTS, SETTINGS, WORKSPACES
from junction.plugins.lab.usersettings import SETTINGS_SUFFIX, settings_path
from junction.plugins.lab.workspaces import WORKSPACE_SUFFIX
from junction.services import utcnow

__all__ = ["import_files"]

log = logging.getLogger("junction.lab")


@dataclass(frozen=True)
class _Source:
    name: str
    directory: Path
    table: Any


async def import_files(
    database: Database, *, user_settings_dir: Path, workspaces_dir: Path
) -> None:
    """Import the settings and workspace files once (see the module docstring).

    Called by the lab's lifespan before it serves. Raises
    :class:`~junction.errors.DatabaseUnavailable`.
    """
    for source in (
        _Source("user-settings", user_settings_dir, SETTINGS),
        _Source("workspaces", workspaces_dir, WORKSPACES),
    ):
        await _import_once(database, source)


async def _import_once(database: Database, source: _Source) -> None:
    async with database.session() as session:
        done = await session.scalar(select(IMPORTS.c.name).where(IMPORTS.c.name == source.name))
    if done is not None:
        return
    reader = _read_settings if source.table is SETTINGS else _read_workspaces
    rows = await anyio.to_thread.run_sync(reader, source.directory)
    try:
        async with database.session() as session:
            await session.execute(
                insert(IMPORTS).values(
                    name=source.name, source=str(source.directory), done=utcnow()
                )
            )
            count = await session.scalar(select(func.count()).select_from(source.table))
            if count or not rows:
                return
            await session.execute(insert(source.table), rows)
    except IntegrityError:
        return  # another server imported (or recorded) it first
    log.info("imported %d %s files from %s", len(rows), source.name, source.directory)


def _times(path: Path) -> dict[str, datetime]:
    info = path.stat()
    return {
        "created": datetime.fromtimestamp(info.st_ctime, UTC),
        "last_modified": datetime.fromtimestamp(info.st_mtime, UTC),
    }


def _read_settings(directory: Path) -> list[dict[str, Any]]:
    """Blocking: every ``*.jupyterlab-settings`` file whose path is a valid plugin id."""
    rows = []
    for path in sorted(directory.rglob("*" + SETTINGS_SUFFIX)) if directory.is_dir() else []:
        parts = path.relative_to(directory).parts
        plugin_id = "/".join(parts[:-1]) + ":" + parts[-1].removesuffix(SETTINGS_SUFFIX)
        try:
            if settings_path(directory, plugin_id) != path:
                continue
            rows.append({"plugin_id": plugin_id, "raw": path.read_text("utf-8"), **_times(path)})
        except (SettingsNotFound, OSError, UnicodeDecodeError) as exc:
            log.warning("not importing settings file %s: %s", path, exc)
    return rows


def _read_workspaces(directory: Path) -> list[dict[str, Any]]:
    """Blocking: every ``<key>.jupyterlab-workspace`` file holding a JSON workspace."""
    rows = []
    for path in sorted(directory.glob("*" + WORKSPACE_SUFFIX)) if directory.is_dir() else []:
        key = path.name.removesuffix(WORKSPACE_SUFFIX)
        if not key or key.startswith(".") or len(key) > 200:
            continue
        try:
            text = path.read_text("utf-8")
            workspace = json.loads(text)
        except (OSError, ValueError) as exc:
            log.warning("not importing workspace file %s: %s", path, exc)
            continue
        if isinstance(workspace, dict) and isinstance(workspace.get("metadata"), dict):
            rows.append({"key": key, "workspace": text, **_times(path)})
    return rows
