"""``FileWorkspaces``: each workspace a JSON file named after its (escaped) id.

``<dir>/<id>.jupyterlab-workspace`` holds the JSON the UI sent, unchanged; ``created`` and
``last_modified`` are read from the file's times when it is served. Ids are escaped
(``quote`` plus ``.`` as ``%2E``), so any id maps to one plain file name and back.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import quote, unquote

import anyio

from junction.plugins.lab.service import InvalidWorkspace, WorkspaceNotFound
from junction.plugins.lab.storage import write_atomically
from junction.services import isoformat

__all__ = ["WORKSPACE_SUFFIX", "FileWorkspaces", "check_workspace"]

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


class FileWorkspaces:
    """The workspace store over one directory (see the module docstring)."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory

    def _path(self, workspace_id: str) -> Path:
        name = quote(workspace_id.lstrip("/"), safe="").replace(".", "%2E")
        if not name or len(name) > _MAX_NAME:
            raise InvalidWorkspace("workspace ids must have 1 to 200 (escaped) characters")
        return self.directory / (name + WORKSPACE_SUFFIX)

    async def list(self) -> list[dict[str, Any]]:
        """Every saved workspace, sorted by id; unreadable files are skipped."""

        def read_all() -> list[dict[str, Any]]:
            try:
                paths = sorted(self.directory.glob("*" + WORKSPACE_SUFFIX))
            except OSError:
                return []
            found = (_read(path) for path in paths if not path.name.startswith("."))
            return [workspace for workspace in found if workspace is not None]

        return await anyio.to_thread.run_sync(read_all)

    async def get(self, workspace_id: str) -> dict[str, Any] | None:
        """The saved workspace, or None."""
        path = self._path(workspace_id)
        return await anyio.to_thread.run_sync(_read, path)

    async def save(self, workspace_id: str, workspace: Mapping[str, Any]) -> None:
        """Keep the workspace (atomically). Raises :class:`InvalidWorkspace`."""
        check_workspace(workspace_id, workspace)
        path = self._path(workspace_id)
        text = json.dumps(workspace, ensure_ascii=False)
        await anyio.to_thread.run_sync(write_atomically, path, text)

    async def delete(self, workspace_id: str) -> None:
        """Remove the file. Raises :class:`WorkspaceNotFound`."""
        path = self._path(workspace_id)
        try:
            await anyio.Path(path).unlink()
        except FileNotFoundError:
            raise WorkspaceNotFound(f"no workspace {workspace_id!r}") from None


def _read(path: Path) -> dict[str, Any] | None:
    try:
        text = path.read_text("utf-8")
        info = path.stat()
        workspace = json.loads(text)
    except (OSError, ValueError):
        return None
    if not isinstance(workspace, dict) or not isinstance(workspace.get("metadata"), dict):
        return None
    workspace["metadata"]["last_modified"] = isoformat(datetime.fromtimestamp(info.st_mtime, UTC))
    workspace["metadata"]["created"] = isoformat(datetime.fromtimestamp(info.st_ctime, UTC))
    return workspace
