"""The collaboration contract: the service its routes (and other plugins) use, its errors.

Room ids are ``{format}:{type}:{fileId}`` (``json:notebook:<uuid>``) or
``JupyterLab:globalAwareness``; file ids are stable across restarts and renames made
through Junction.
"""

from __future__ import annotations

from typing import Protocol

from junction.errors import NotFound
from junction.plugin import ServiceKey

__all__ = ["COLLABORATION", "GLOBAL_AWARENESS", "CollaborationService", "RoomNotFound"]

GLOBAL_AWARENESS = "JupyterLab:globalAwareness"
"""The room that carries only awareness (who is here, which document they look at)."""


class RoomNotFound(NotFound):
    """The room id is malformed, names an unknown file id, or the file is gone."""


class CollaborationService(Protocol):
    """Shared documents of files under the root, one room per file."""

    @property
    def session_id(self) -> str:
        """This server process's id, handed to clients by the session route."""
        ...

    async def index(self, path: str) -> tuple[str, bool]:
        """The stable id of the file at ``path`` and whether it was made now.

        Called for ``PUT /api/collaboration/session/{path}``; raises the contents service's
        ``FileNotFound`` for a missing file.
        """
        ...

    async def path_of(self, file_id: str) -> str | None:
        """The API path the file id stands for now, or None."""
        ...


COLLABORATION: ServiceKey[CollaborationService] = ServiceKey("collaboration")
