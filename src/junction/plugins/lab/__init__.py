"""The lab plugin: the REST APIs JupyterLab 4 needs beyond files and kernels.

Map of the package:

- ``service.py``: the contracts (settings, workspaces, config sections, events), keys, errors;
- ``schemas.py``: plugin settings schemas and admin defaults; ``usersettings.py`` keeps the
  user's values (JSON5 text) in the database;
- ``workspaces.py``: layouts in the database; ``tables.py`` and ``migrations/``: the lab's
  tables; ``imports.py``: the one-time import of the settings and workspace files;
- ``configsections.py``: config sections as files, written through ``storage.py`` (atomic
  replace);
- ``events.py``: re-exports the core's event bus (``junction.events``), which
  ``/api/events`` serves;
- ``translations.py``, ``licenses.py``, ``nbconvert.py``, ``plugins.py``: language packs,
  license reports, notebook export, plugins switched off from the UI;
- ``routes.py`` (``/lab/api/...``) and ``server_routes.py`` (``/api/config``,
  ``/api/events``, ``/api/nbconvert``, ``/nbconvert``).

Settings and workspaces live in the server's database (``database_url``); config sections
under ``<jupyter config dir>/junction/lab`` unless configured otherwise.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import anyio
from jupyter_core.paths import jupyter_config_dir
from starlette.requests import HTTPConnection

from junction.errors import Forbidden, NotFound
from junction.plugin import Plugin, PluginContext
from junction.plugins.contents.service import CONTENTS, ContentsService, Reach, check_path
from junction.plugins.frontend.models import PathKind
from junction.plugins.frontend.service import FRONTEND, PathInspector
from junction.plugins.lab.configsections import FileConfigSections
from junction.plugins.lab.imports import import_files
from junction.plugins.lab.nbconvert import Nbconvert
from junction.plugins.lab.plugins import LockedPageConfig, PluginSwitches
from junction.plugins.lab.routes import router as lab_router
from junction.plugins.lab.schemas import SchemaCatalog, load_overrides
from junction.plugins.lab.server_routes import router as server_router
from junction.plugins.lab.service import (
    CONFIG,
    EVENTS,
    NBCONVERT,
    PLUGIN_SWITCHES,
    SETTINGS,
    WORKSPACES,
    ConfigStore,
    EventBus,
    SettingsStore,
    WorkspaceStore,
)
from junction.plugins.lab.settings import LabSettings
from junction.plugins.lab.tables import TABLES
from junction.plugins.lab.usersettings import TableSettingsStore
from junction.plugins.lab.workspaces import TableWorkspaces
from junction.services import DATABASE

__all__ = [
    "CONFIG",
    "EVENTS",
    "SETTINGS",
    "WORKSPACES",
    "ConfigStore",
    "EventBus",
    "LabSettings",
    "SettingsStore",
    "WorkspaceStore",
    "plugin",
]

log = logging.getLogger("junction.lab")


def default_data_dir() -> Path:
    """``<jupyter config dir>/junction/lab``; honours ``$JUPYTER_CONFIG_DIR``."""
    return Path(jupyter_config_dir()) / "junction" / "lab"


def path_inspector(contents: ContentsService) -> PathInspector:
    """Tells Notebook 7's tree page what lies at a path, as the contents API sees it for
    the request's user.

    Hidden items look missing unless contents serves them; malformed paths raise 400. In
    multi-user mode what the user does not reach looks missing, and a folder above what
    they reach (their home's parents) is a directory.
    """
    kinds: dict[str, PathKind] = {"directory": "directory", "notebook": "notebook"}

    async def inspect(conn: HTTPConnection, path: str) -> PathKind:
        try:
            if await check_path(conn, path, "read") is Reach.ANCESTOR:
                return "directory"
            model = await contents.get(path, content=False)
        except (NotFound, Forbidden):
            return "missing"
        return kinds.get(model["type"], "file")

    return inspect


@asynccontextmanager
async def lifespan(ctx: PluginContext[LabSettings]) -> AsyncIterator[None]:
    """Import old settings and workspace files once, open the stores, provide the lab
    services, and add the lab's page config keys."""
    settings = ctx.settings
    frontend = ctx.get(FRONTEND)
    database = ctx.get(DATABASE)
    data_dir = (settings.data_dir or default_data_dir()).expanduser()
    user_settings_dir = (settings.user_settings_dir or data_dir / "user-settings").expanduser()
    workspaces_dir = (settings.workspaces_dir or data_dir / "workspaces").expanduser()
    config_dir = (settings.config_dir or data_dir / "config").expanduser()

    overrides = await anyio.to_thread.run_sync(
        load_overrides, frontend.layout.settings_dir, settings.default_settings
    )
    catalog = SchemaCatalog(frontend.layout.schemas_dir, overrides)
    await import_files(database, user_settings_dir=user_settings_dir, workspaces_dir=workspaces_dir)
    config = FileConfigSections(config_dir)
    switches = PluginSwitches(config, settings.locked_plugins, settings.lock_all_plugins)
    ctx.provide(SETTINGS, TableSettingsStore(catalog, database, frontend))
    ctx.provide(WORKSPACES, TableWorkspaces(database))
    ctx.provide(CONFIG, LockedPageConfig(config, switches))
    ctx.provide(PLUGIN_SWITCHES, switches)
    contents = ctx.get_optional(CONTENTS)
    ctx.provide(NBCONVERT, Nbconvert(contents))
    if contents is not None:
        frontend.set_path_inspector(path_inspector(contents))

    async def lab_page_config() -> dict[str, Any]:
        layer = await switches.page_config()
        layer["userSettingsDir"] = user_settings_dir.as_posix()
        layer["workspacesDir"] = workspaces_dir.as_posix()
        return layer

    frontend.add_page_config(lab_page_config)
    log.info("lab settings and workspaces in the database %s", database.masked_url)
    yield


plugin = Plugin(
    name="lab",
    description="JupyterLab's settings, workspaces, translations, themes, config sections, "
    "events and notebook export.",
    settings=LabSettings,
    routers=[lab_router, server_router],
    lifespan=lifespan,
    provides=[SETTINGS, WORKSPACES, CONFIG, PLUGIN_SWITCHES, NBCONVERT],
    requires=[FRONTEND, DATABASE],
    optional=[CONTENTS],
    public_paths=["lab/api/themes/"],
    tables=TABLES,
)
