"""The frontend plugin: serves JupyterLab 4, and Notebook 7 when it is installed, from their
installed files.

Map of the package:

- ``appdir.py`` finds the JupyterLab application directory, the labextensions path and the
  ``notebook`` package;
- ``extensions.py`` reads the prebuilt extensions found there;
- ``pageconfig.py`` assembles the page config the HTML shells carry;
- ``template.py`` renders JupyterLab's ``index.html`` and Notebook 7's page templates;
- ``installed.py`` is :class:`InstalledLab`, the :class:`FrontendService` implementation;
- ``routes.py`` holds JupyterLab's pages (``/lab``, ``/doc``) and the static file routes;
- ``notebook_routes.py`` holds Notebook 7's pages (``/tree``, ``/notebooks``, ``/edit``,
  ``/consoles``, ``/terminals``) and files.

Files are served through :mod:`junction.staticfiles`. The lab plugin (settings, workspaces,
themes...) builds on the :data:`FRONTEND` service; both UIs use it.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import anyio

from junction.plugin import Plugin, PluginContext
from junction.plugins.frontend.appdir import (
    find_app_dir,
    find_notebook,
    labextensions_path,
    load_layout,
)
from junction.plugins.frontend.installed import InstalledLab
from junction.plugins.frontend.notebook_routes import router as notebook_router
from junction.plugins.frontend.routes import router
from junction.plugins.frontend.service import FRONTEND, FrontendService, PageConfigProvider
from junction.plugins.frontend.settings import FrontendSettings
from junction.plugins.frontend.template import NotebookShell, Shell
from junction.plugins.terminals.service import TERMINALS

__all__ = ["FRONTEND", "FrontendService", "FrontendSettings", "PageConfigProvider", "plugin"]

log = logging.getLogger("junction.frontend")


@asynccontextmanager
async def lifespan(ctx: PluginContext[FrontendSettings]) -> AsyncIterator[None]:
    """Find JupyterLab's (and Notebook 7's) files and provide :data:`FRONTEND`.

    Fails at startup, naming the fix, when JupyterLab is not installed; without the
    ``notebook`` package, Notebook 7's pages answer 404 saying how to install it. The pages
    offer terminals when a terminals service runs.
    """
    settings = ctx.settings
    app_dir = await anyio.to_thread.run_sync(find_app_dir, settings.app_dir)
    layout = await anyio.to_thread.run_sync(load_layout, app_dir)
    shell = await anyio.to_thread.run_sync(Shell.load, layout.static_dir)
    notebook = await anyio.to_thread.run_sync(find_notebook)
    notebook_shell = None
    if notebook is not None:
        notebook_shell = await anyio.to_thread.run_sync(NotebookShell.load, notebook.templates_dir)
    path = labextensions_path(settings.extra_labextensions_path)
    lab = InstalledLab(
        layout,
        path,
        settings,
        ctx.server,
        shell,
        notebook=notebook,
        notebook_shell=notebook_shell,
        terminals_available=ctx.get_optional(TERMINALS) is not None,
    )
    ctx.provide(FRONTEND, lab)
    log.info("serving %s %s from %s", layout.app_name, layout.app_version, app_dir)
    if notebook is not None:
        log.info("serving Jupyter Notebook %s from %s", notebook.version, notebook.package_dir)
    yield


plugin = Plugin(
    name="frontend",
    description="JupyterLab's and Notebook 7's pages, core bundles, favicons and prebuilt "
    "extensions.",
    settings=FrontendSettings,
    routers=[router, notebook_router],
    lifespan=lifespan,
    provides=[FRONTEND],
    optional=[TERMINALS],
    public_paths=[
        "static/lab/",
        "static/notebook/",
        "static/favicons/",
        "favicon.ico",
        "lab/extensions/",
    ],
    landing_page="lab",
)
