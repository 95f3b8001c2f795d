"""The apps plugin: web apps (Streamlit, Panel, Bokeh, Voila, Gradio, Dash or any command)
run on demand and served, each on a host name of its own, behind Junction's authentication.

Map of the package:

- ``service.py``: the :class:`AppService` Protocol, the :data:`APPS` key, the errors.
- ``models.py``, ``settings.py``: wire models and :class:`AppsSettings`.
- ``presets.py``: the frameworks as data (command template, environment, prefix mode,
  readiness path, origin flags).
- ``tables.py``, ``store.py``, ``migrations/``: app definitions in ``apps_apps``.
- ``supervisor.py``: one app's process group: start, readiness, restarts, stop, its logs.
- ``manager.py``: :class:`SupervisedApps`, the service: definitions, access, codes.
- ``proxy.py``: the reverse proxy (HTTP and WebSocket) and what it strips and adds.
- ``apphost.py``: the apps listener: host name to app, code exchange, cookie, proxying.
- ``routes.py``, ``page.py``: the REST API, ``/apps/{id}/``, the ``/apps`` page,
  ``/server-proxy/servers-info`` and ``/proxy/{port}/``.
- ``labextension/``: JupyterLab's "Open as App" context menu item, a prebuilt extension
  written by hand (installed to ``share/jupyter/labextensions/@junction/apps-extension``).
"""

from __future__ import annotations

import logging
import socket
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import anyio
import uvicorn

from junction.events import EVENTS
from junction.plugin import Plugin, PluginContext
from junction.plugins.apps.apphost import AppHost, AppsServer
from junction.plugins.apps.manager import SupervisedApps
from junction.plugins.apps.routes import router
from junction.plugins.apps.service import APPS, AppNotFound, AppService
from junction.plugins.apps.settings import AppsSettings
from junction.plugins.apps.store import TableAppStore
from junction.plugins.apps.tables import TABLES
from junction.plugins.frontend.service import FRONTEND
from junction.services import AUTH, DATABASE, REAPER

__all__ = ["APPS", "AppNotFound", "AppService", "plugin"]

log = logging.getLogger("junction.apps")


def _listen(ctx: PluginContext[AppsSettings]) -> socket.socket:
    ip = ctx.server.ip
    address = "127.0.0.1" if ip in ("localhost", "") else ip
    family = socket.AF_INET6 if ":" in address else socket.AF_INET
    sock = socket.socket(family)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((address, ctx.settings.port))
    sock.listen(128)
    return sock


def _junction_origin(ctx: PluginContext[AppsSettings]) -> str:
    """Junction's scheme and host from configuration (the port is added once known)."""
    server = ctx.server
    ip = server.ip
    if ip in ("localhost", "127.0.0.1", "::1", ""):
        host = "localhost"
    elif ip in ("0.0.0.0", "::"):  # noqa: S104 - compared, not bound
        host = socket.gethostname()
    else:
        host = f"[{ip}]" if ":" in ip else ip
    return f"{server.scheme}://{host}"


async def _page_config() -> dict[str, Any]:
    """Tells the "Open as App" labextension (``labextension/``) that the apps API is here."""
    return {"junctionAppsFrameworks": "api/apps/frameworks"}


@asynccontextmanager
async def lifespan(ctx: PluginContext[AppsSettings]) -> AsyncIterator[None]:
    """Load stored apps, start the apps listener; at exit stop every app, then the listener."""
    apps = SupervisedApps(
        ctx.settings,
        root_dir=ctx.server.root_dir,
        store=TableAppStore(ctx.get(DATABASE)),
        auth=ctx.get(AUTH),
        reaper=ctx.get(REAPER),
        task_group=ctx.task_group,
        junction_origin=_junction_origin(ctx),
        base_url=ctx.server.base_url,
        server_port=ctx.server.port,
    )
    apps.events = ctx.get_optional(EVENTS)
    await apps.load()
    sock = _listen(ctx)
    apps.apps_port = sock.getsockname()[1]
    config = uvicorn.Config(
        AppHost(apps),
        lifespan="off",
        ws="websockets-sansio",
        ws_max_size=ctx.settings.websocket_max_message_size,
        ws_per_message_deflate=False,
        log_level="warning",
        log_config=None,  # keep the server's logging (and its secret scrubbing) as it is
        proxy_headers=False,
        server_header=False,
        date_header=False,  # the app's own Date header passes through
        timeout_graceful_shutdown=2,
    )
    server = AppsServer(config)
    stopped = anyio.Event()

    async def serve() -> None:
        try:
            await server.serve([sock])
        finally:
            stopped.set()

    ctx.task_group.start_soon(serve)
    with anyio.fail_after(30):
        while not server.started and not stopped.is_set():  # noqa: ASYNC110 - uvicorn sets a flag only
            await anyio.sleep(0.01)
    log.info("apps are served at %s", apps.app_origin("{app}"))
    frontend = ctx.get_optional(FRONTEND)
    if frontend is not None:
        frontend.add_page_config(_page_config)
    if ctx.settings.cull_idle_timeout:
        ctx.task_group.start_soon(apps.cull)
    ctx.provide(APPS, apps)
    try:
        yield
    finally:
        with anyio.CancelScope(shield=True):
            await apps.aclose()
            server.should_exit = True
            with anyio.move_on_after(5):
                await stopped.wait()
            sock.close()


plugin = Plugin(
    name="apps",
    description="App launcher (/api/apps): Streamlit, Panel, Voila, Gradio, Dash... each on "
    "its own origin behind an authenticated reverse proxy.",
    settings=AppsSettings,
    routers=[router],
    lifespan=lifespan,
    provides=[APPS],
    requires=[AUTH, REAPER, DATABASE],
    optional=[EVENTS, FRONTEND],
    tables=TABLES,
    order_hint=90,
)
