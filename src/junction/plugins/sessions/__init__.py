"""The sessions plugin: ``/api/sessions``, which binds documents to kernels.

Map of the package:

- ``service.py``: the :class:`SessionService` and :class:`SessionStore` Protocols, the
  :data:`SESSIONS` key and the errors.
- ``models.py``: wire models (the session, request bodies).
- ``manager.py``: :class:`StoredSessions`, the service: sessions in a store, kernels from
  the kernels service (``requires=[KERNELS]``).
- ``tables.py``, ``migrations/``: the ``sessions_sessions`` table;
- ``tablestore.py``: :class:`TableSessionStore`, the store in the database (the default);
- ``memory.py``: :class:`MemorySessionStore`, the in-memory store.
- ``routes.py``: the HTTP routes.
- ``settings.py``: :class:`SessionsSettings`.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from junction.plugin import Plugin, PluginContext
from junction.plugins.kernels.service import KERNELS
from junction.plugins.sessions.manager import StoredSessions
from junction.plugins.sessions.memory import MemorySessionStore
from junction.plugins.sessions.routes import router
from junction.plugins.sessions.service import SESSIONS, SessionService, SessionStore
from junction.plugins.sessions.settings import SessionsSettings
from junction.plugins.sessions.tables import TABLES
from junction.plugins.sessions.tablestore import TableSessionStore
from junction.services import DATABASE

__all__ = ["SESSIONS", "SessionService", "SessionStore", "plugin"]


@asynccontextmanager
async def lifespan(ctx: PluginContext[SessionsSettings]) -> AsyncIterator[None]:
    """Provide :data:`SESSIONS` over the configured store; nothing to stop (kernels stop
    with the kernels plugin)."""
    store: SessionStore = (
        MemorySessionStore()
        if ctx.settings.store == "memory"
        else TableSessionStore(ctx.get(DATABASE))
    )
    sessions = StoredSessions(
        store, ctx.get(KERNELS), ctx.server.root_dir, listing=ctx.settings.list_sessions
    )
    ctx.provide(SESSIONS, sessions)
    yield


plugin = Plugin(
    name="sessions",
    description="Sessions API: binds documents to kernels (/api/sessions).",
    settings=SessionsSettings,
    routers=[router],
    lifespan=lifespan,
    provides=[SESSIONS],
    requires=[KERNELS, DATABASE],
    tables=TABLES,
)
