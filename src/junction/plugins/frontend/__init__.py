"""The frontend plugin: serves JupyterLab 4 from its installed files.

Map of the package:

- ``appdir.py`` finds the JupyterLab application directory and the labextensions path;
- ``extensions.py`` reads the prebuilt extensions found there;
- ``pageconfig.py`` assembles the page config the HTML shell carries;
- ``template.py`` renders JupyterLab's own ``index.html`` template;
- ``staticfiles.py`` serves files safely, with long caching for content-hashed names;
- ``installed.py`` is :class:`InstalledLab`, the :class:`FrontendService` implementation;
- ``routes.py`` holds the pages (``/lab``, ``/doc``) and the static file routes.

The lab plugin (settings, workspaces, themes...) builds on the :data:`FRONTEND` service.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import anyio

from junction.plugin import Plugin, PluginContext
from junction.plugins.frontend.appdir import find_app_dir, labextensions_path, load_layout
from junction.plugins.frontend.installed import InstalledLab
from junction.plugins.frontend.routes import router
from junction.plugins.frontend.service import FRONTEND, FrontendService, PageConfigProvider
from junction.plugins.frontend.settings import FrontendSettings
from junction.plugins.frontend.template import Shell

__all__ = ["FRONTEND", "FrontendService", "FrontendSettings", "PageConfigProvider", "plugin"]

log = logging.getLogger("junction.frontend")


@asynccontextmanager
async def lifespan(ctx: PluginContext[FrontendSettings]) -> AsyncIterator[None]:
    """Find JupyterLab's files and provide :data:`FRONTEND`.

    Fails at startup, naming the fix, when JupyterLab is not installed.
    """
    settings = ctx.settings
    app_dir = await anyio.to_thread.run_sync(find_app_dir, settings.app_dir)
    layout = await anyio.to_thread.run_sync(load_layout, app_dir)
    shell = await anyio.to_thread.run_sync(Shell.load, layout.static_dir)
    path = labextensions_path(settings.extra_labextensions_path)
    lab = InstalledLab(layout, path, settings, ctx.server, shell)
    ctx.provide(FRONTEND, lab)
    log.info("serving %s %s from %s", layout.app_name, layout.app_version, app_dir)
    yield


plugin = Plugin(
    name="frontend",
    description="JupyterLab's pages, core bundle, favicons and prebuilt extensions.",
    settings=FrontendSettings,
    routers=[router],
    lifespan=lifespan,
    provides=[FRONTEND],
    public_paths=["static/lab/", "static/favicons/", "favicon.ico", "lab/extensions/"],
    landing_page="lab",
)
