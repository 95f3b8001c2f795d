"""``TableWorkspaces``: each workspace a row of ``lab_workspaces`` under its escaped id.

A row holds the JSON the UI sent, unchanged; ``created`` and ``last_modified`` are added to
its metadata when it is served. Ids are escaped as their files used to be named (``quote``
plus ``.`` as ``%2E``), so any id, however odd, is one plain key, and the
``<id>.jupyterlab-workspace`` files of the workspaces directory import as they are (see
:mod:`junction.plugins.lab.imports`).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from datetime import datetime
from typing import Any
from urllib.parse import quote, unquote

from sqlalchemy import delete, select

from junction.database import Database, upsert
from junction.plugins.lab.service import InvalidWorkspace, WorkspaceNotFound
from junction.plugins.lab.tables import WORKSPACES, as_utc, stored_key, user_key
from junction.services import isoformat, utcnow

__all__ = ["WORKSPACE_SUFFIX", "TableWorkspaces", "check_workspace", "workspace_key"]

WORKSPACE_SUFFIX = ".jupyterlab-workspace"
_MAX_NAME = 200


def check_workspace(workspace_id: str, workspace: Mapping[str, Any]) -> None:
    """Refuse a body that is not a workspace for ``workspace_id``.

    The UI writes ``metadata.id`` with or without a leading ``/`` and URL-escaped.
    """
    data, metadata = workspace.get("data"), workspace.get("metadata")
    if not isinstance(data, dict) or not isinstance(metadata, dict):
        raise InvalidWorkspace('a workspace is {"data": {...}, "metadata": {"id": ...}}')
    claimed = metadata.get("id")
    if not isinstance(claimed, str):
        raise InvalidWorkspace("workspace metadata.id must be a string")
    if unquote(claimed).lstrip("/") != workspace_id.lstrip("/"):
        raise InvalidWorkspace(
            f"workspace metadata.id {claimed!r} does not match the URL's {workspace_id!r}"
        )


def workspace_key(workspace_id: str) -> str:
    """The escaped id a workspace is kept under (and its file was named after)."""
    name = quote(workspace_id.lstrip("/"), safe="").replace(".", "%2E")
    if not name or len(name) > _MAX_NAME:
        raise InvalidWorkspace("workspace ids must have 1 to 200 (escaped) characters")
    return name


class TableWorkspaces:
    """The workspace store over ``lab_workspaces`` (see the module docstring).

    Every method raises :class:`~junction.errors.DatabaseUnavailable` when the database
    cannot be reached.
    """

    def __init__(self, database: Database) -> None:
        self.database = database

    async def list(self) -> list[dict[str, Any]]:
        """Every saved workspace, sorted by id; rows that do not parse are skipped."""
        query = (
            select(WORKSPACES.c.workspace, WORKSPACES.c.created, WORKSPACES.c.last_modified)
            .where(WORKSPACES.c.user == user_key())
            .order_by(WORKSPACES.c.key)
        )
        async with self.database.session() as session:
            rows = (await session.execute(query)).all()
        found = (_served(*row) for row in rows)
        return [workspace for workspace in found if workspace is not None]

    async def get(self, workspace_id: str) -> dict[str, Any] | None:
        """The saved workspace, or None."""
        key = stored_key(user_key(), workspace_key(workspace_id))
        query = select(
            WORKSPACES.c.workspace, WORKSPACES.c.created, WORKSPACES.c.last_modified
        ).where(WORKSPACES.c.key == key)
        async with self.database.session() as session:
            row = (await session.execute(query)).first()
        return None if row is None else _served(*row)

    async def save(self, workspace_id: str, workspace: Mapping[str, Any]) -> None:
        """Keep the workspace (replacing any). Raises :class:`InvalidWorkspace`."""
        check_workspace(workspace_id, workspace)
        user = user_key()
        key = stored_key(user, workspace_key(workspace_id))
        now = utcnow()
        row = {
            "key": key,
            "user": user,
            "workspace": json.dumps(workspace, ensure_ascii=False),
            "created": now,
            "last_modified": now,
        }
        async with self.database.session() as session:
            await session.execute(upsert(self.database.dialect, WORKSPACES, "key", row))

    async def delete(self, workspace_id: str) -> None:
        """Forget a workspace. Raises :class:`WorkspaceNotFound`."""
        key = stored_key(user_key(), workspace_key(workspace_id))
        async with self.database.session() as session:
            result = await session.execute(delete(WORKSPACES).where(WORKSPACES.c.key == key))
        if not getattr(result, "rowcount", 0):
            raise WorkspaceNotFound(f"no workspace {workspace_id!r}")


def _served(text: str, created: datetime, last_modified: datetime) -> dict[str, Any] | None:
    try:
        workspace = json.loads(text)
    except ValueError:
        return None
    if not isinstance(workspace, dict) or not isinstance(workspace.get("metadata"), dict):
        return None
    workspace["metadata"]["last_modified"] = isoformat(as_utc(last_modified))
    workspace["metadata"]["created"] = isoformat(as_utc(created))
    return workspace
