"""The lab plugin: the REST APIs JupyterLab 4 needs beyond files and kernels.

Map of the package:

- ``service.py``: the contracts (settings, workspaces, config sections, events), keys, errors;
- ``schemas.py``: plugin settings schemas and admin defaults; ``usersettings.py`` stores the
  user's values as JSON5 files;
- ``workspaces.py``, ``configsections.py``: file stores for layouts and config sections,
  all written through ``storage.py`` (atomic replace);
- ``events.py``: the in-memory event bus behind ``/api/events``;
- ``translations.py``, ``licenses.py``, ``nbconvert.py``, ``plugins.py``: language packs,
  license reports, notebook export, plugins switched off from the UI;
- ``routes.py`` (``/lab/api/...``) and ``server_routes.py`` (``/api/config``,
  ``/api/events``, ``/api/nbconvert``, ``/nbconvert``).

User state lives under ``<jupyter config dir>/junction/lab`` unless configured otherwise.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import anyio
from jupyter_core.paths import jupyter_config_dir

from junction.plugin import Plugin, PluginContext
from junction.plugins.contents.service import CONTENTS
from junction.plugins.frontend.service import FRONTEND
from junction.plugins.lab.configsections import FileConfigSections
from junction.plugins.lab.events import MemoryEventBus
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
from junction.plugins.lab.usersettings import FileSettingsStore
from junction.plugins.lab.workspaces import FileWorkspaces

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


@asynccontextmanager
async def lifespan(ctx: PluginContext[LabSettings]) -> AsyncIterator[None]:
    """Open the stores, provide the lab services, and add the lab's page config keys."""
    settings = ctx.settings
    frontend = ctx.get(FRONTEND)
    data_dir = (settings.data_dir or default_data_dir()).expanduser()
    user_settings_dir = (settings.user_settings_dir or data_dir / "user-settings").expanduser()
    workspaces_dir = (settings.workspaces_dir or data_dir / "workspaces").expanduser()
    config_dir = (settings.config_dir or data_dir / "config").expanduser()

    overrides = await anyio.to_thread.run_sync(
        load_overrides, frontend.layout.settings_dir, settings.default_settings
    )
    catalog = SchemaCatalog(frontend.layout.schemas_dir, overrides)
    config = FileConfigSections(config_dir)
    switches = PluginSwitches(config, settings.locked_plugins, settings.lock_all_plugins)
    bus = MemoryEventBus()
    ctx.provide(SETTINGS, FileSettingsStore(catalog, user_settings_dir, frontend))
    ctx.provide(WORKSPACES, FileWorkspaces(workspaces_dir))
    ctx.provide(CONFIG, LockedPageConfig(config, switches))
    ctx.provide(EVENTS, bus)
    ctx.provide(PLUGIN_SWITCHES, switches)
    ctx.provide(NBCONVERT, Nbconvert(ctx.get_optional(CONTENTS)))

    async def lab_page_config() -> dict[str, Any]:
        layer = await switches.page_config()
        layer["userSettingsDir"] = user_settings_dir.as_posix()
        layer["workspacesDir"] = workspaces_dir.as_posix()
        return layer

    frontend.add_page_config(lab_page_config)
    log.info("lab user settings in %s, workspaces in %s", user_settings_dir, workspaces_dir)
    try:
        yield
    finally:
        bus.close()


plugin = Plugin(
    name="lab",
    description="JupyterLab's settings, workspaces, translations, themes, config sections, "
    "events and notebook export.",
    settings=LabSettings,
    routers=[lab_router, server_router],
    lifespan=lifespan,
    provides=[SETTINGS, WORKSPACES, CONFIG, EVENTS, PLUGIN_SWITCHES, NBCONVERT],
    requires=[FRONTEND],
    optional=[CONTENTS],
    public_paths=["lab/api/themes/"],
)
