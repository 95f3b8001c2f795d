"""The terminals plugin: ``/api/terminals``, the terminal WebSocket, the :data:`TERMINALS` service.

Map of the package:

- ``service.py``: the :class:`TerminalService` Protocol, the :data:`TERMINALS` key, the errors.
- ``models.py``: wire models.
- ``manager.py``: :class:`PtyTerminals`, the service: terminals by name, the shell and its
  working directory and environment, culling, termination of everything at exit.
- ``terminal.py``: :class:`PtyTerminal`, one shell on a PTY read from the event loop, its
  scrollback, its clients' outboxes and the flow control between them.
- ``connection.py``: one WebSocket in terminado's JSON protocol: read and write loops, close
  codes.
- ``routes.py``, ``settings.py``: HTTP/WebSocket routes and :class:`TerminalsSettings`.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from junction.plugin import Plugin, PluginContext
from junction.plugins.terminals.manager import PtyTerminals
from junction.plugins.terminals.routes import router
from junction.plugins.terminals.service import TERMINALS, TerminalNotFound, TerminalService
from junction.plugins.terminals.settings import TerminalsSettings
from junction.services import REAPER, SERVER

__all__ = ["TERMINALS", "TerminalNotFound", "TerminalService", "plugin"]


def _server_url(ctx: PluginContext[TerminalsSettings]) -> str | None:
    server = ctx.server
    if server.port == 0:
        return None
    host = f"[{server.ip}]" if ":" in server.ip else server.ip
    return f"{server.scheme}://{host}:{server.port}{server.base_url}"


@asynccontextmanager
async def lifespan(ctx: PluginContext[TerminalsSettings]) -> AsyncIterator[None]:
    """Provide :data:`TERMINALS`, report gauges and activity; terminate every terminal at exit."""
    server = ctx.get(SERVER)
    terminals = PtyTerminals(
        ctx.settings,
        root_dir=ctx.server.root_dir,
        reaper=ctx.get(REAPER),
        task_group=ctx.task_group,
        server_url=_server_url(ctx),
        max_message_size=min(ctx.settings.max_message_size, ctx.server.websocket_max_message_size),
    )
    async with terminals:
        ctx.provide(TERMINALS, terminals)
        server.gauges["terminals"] = terminals.terminal_count
        server.activity_sources.append(terminals.last_activity)
        try:
            yield
        finally:
            server.gauges.pop("terminals", None)
            server.activity_sources.remove(terminals.last_activity)


plugin = Plugin(
    name="terminals",
    description="Terminals API and terminal WebSocket (/api/terminals), shells on real PTYs.",
    settings=TerminalsSettings,
    routers=[router],
    lifespan=lifespan,
    provides=[TERMINALS],
    requires=[SERVER, REAPER],
    order_hint=60,
)
