"""The collaboration plugin: real-time collaboration with server-owned documents.

Serves what JupyterLab's collaboration front end (``jupyter-docprovider``,
``jupyter-collaboration-ui``) needs: ``PUT /api/collaboration/session/{path}`` (a file's
stable id) and the room WebSockets ``/api/collaboration/room/{format}:{type}:{fileId}`` and
``/api/collaboration/room/JupyterLab:globalAwareness``. See docs/collaboration.md.

Map of the package:

- ``service.py``: the :class:`CollaborationService` Protocol, the :data:`COLLABORATION` key.
- ``models.py``: wire models; ``routes.py``: the routes; ``settings.py``: the settings.
- ``protocol.py``: the y-protocols framing; ``room.py``: :class:`Room` (sync, awareness,
  clients); ``document.py``: :class:`DocumentRoom` (a room bound to a file: load, save,
  outside changes); ``rooms.py``: :class:`Rooms` (open rooms, cleanup; the service);
  ``reach.py``: what a room opens is judged against everyone in it (multi-user mode);
  ``connection.py``: one client's WebSocket.
- ``store.py``, ``tables.py``, ``migrations/``: file ids and room updates in the database.

With the frontend running, the page config says ``disableRTC: false`` and, with the kernels
plugin, ``serverSideExecution: true``: ``POST /api/kernels/{kernel_id}/execute`` runs a cell
on the server, which writes its outputs into the document (``execution.py``). The contents
service tells the rooms about saves, renames and deletes.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from junction.errors import HTTPError
from junction.plugin import Plugin, PluginContext
from junction.plugins.collaboration.execution import (
    NOTEBOOK_TRACKER,
    RecordTiming,
    ServerExecutor,
    records_timing,
)
from junction.plugins.collaboration.rooms import Rooms
from junction.plugins.collaboration.routes import router
from junction.plugins.collaboration.service import COLLABORATION, CollaborationService
from junction.plugins.collaboration.settings import CollaborationSettings
from junction.plugins.collaboration.store import DatabaseStore
from junction.plugins.collaboration.tables import TABLES
from junction.plugins.contents.service import CONTENTS, CONTENTS_ACCESS
from junction.plugins.frontend.service import FRONTEND
from junction.plugins.kernels.service import KERNELS, ServerSideExecution
from junction.plugins.lab.service import SETTINGS, SettingsStore
from junction.services import DATABASE

__all__ = ["COLLABORATION", "CollaborationService", "CollaborationSettings", "plugin"]


def _timing_switch(setting: bool | None, lab_settings: SettingsStore | None) -> RecordTiming:
    """Whether a cell run on the server records timings: the plugin setting when set, else
    the user's notebook setting ``recordTiming`` (off without the lab settings)."""

    async def record_timing() -> bool:
        if setting is not None:
            return setting
        if lab_settings is None:
            return False
        try:
            entry = await lab_settings.get(NOTEBOOK_TRACKER)
        except HTTPError:
            return False
        return records_timing(entry.settings, entry.schema_)

    return record_timing


@asynccontextmanager
async def lifespan(ctx: PluginContext[CollaborationSettings]) -> AsyncIterator[None]:
    """Provide :data:`COLLABORATION`; save and close every room when the server stops."""
    store = DatabaseStore(ctx.get(DATABASE), checkpoint_every=ctx.settings.checkpoint_every)
    access = ctx.get_optional(CONTENTS_ACCESS)
    rooms = Rooms(ctx.settings, store, ctx.get(CONTENTS), ctx.task_group, access)
    ctx.get(CONTENTS).add_observer(rooms.on_contents_change)
    ctx.provide(COLLABORATION, rooms)
    kernels = ctx.get_optional(KERNELS)
    if ctx.settings.server_side_execution and isinstance(kernels, ServerSideExecution):
        switch = _timing_switch(ctx.settings.record_timing, ctx.get_optional(SETTINGS))
        rooms.executor = ServerExecutor(rooms, kernels, ctx.task_group, switch)
    keys = {"disableRTC": False, "serverSideExecution": rooms.executor is not None}
    frontend = ctx.get_optional(FRONTEND)
    if frontend is not None:

        async def collaboration_page_config() -> dict[str, Any]:
            return dict(keys)

        frontend.add_page_config(collaboration_page_config)
    try:
        yield
    finally:
        await rooms.aclose()


plugin = Plugin(
    name="collaboration",
    description="Real-time collaboration: shared documents kept by the server "
    "(/api/collaboration).",
    settings=CollaborationSettings,
    routers=[router],
    lifespan=lifespan,
    provides=[COLLABORATION],
    requires=[CONTENTS, DATABASE],
    optional=[FRONTEND, KERNELS, SETTINGS, CONTENTS_ACCESS],
    tables=TABLES,
)
