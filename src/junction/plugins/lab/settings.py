"""Settings of the lab plugin (the ``[lab]`` table of the config file)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from pydantic import Field

from junction.plugin import PluginSettings

__all__ = ["LabSettings"]


class LabSettings(PluginSettings):
    """Where the UI's user state is kept, and defaults an admin can impose."""

    data_dir: Path | None = Field(
        None,
        description="Directory holding config sections, and the settings and workspace "
        "files imported once into the database. "
        "Unset: <jupyter config dir>/junction/lab (e.g. ~/.jupyter/junction/lab).",
    )
    user_settings_dir: Path | None = Field(
        None,
        description="User settings files (JupyterLab's layout) imported into the database "
        "the first time it has none. Unset: <data_dir>/user-settings.",
    )
    workspaces_dir: Path | None = Field(
        None,
        description="Workspace files imported into the database the first time it has "
        "none. Unset: <data_dir>/workspaces.",
    )
    config_dir: Path | None = Field(
        None,
        description="Where /api/config sections are saved as <section>.json. "
        "Unset: <data_dir>/config.",
    )
    default_settings: dict[str, dict[str, Any]] = Field(
        default_factory=dict,
        description="Setting defaults per plugin id, applied over the app's overrides.json, "
        'e.g. {"@jupyterlab/apputils-extension:themes": {"theme": "JupyterLab Dark"}}.',
    )
    locked_plugins: list[str] = Field(
        default_factory=list,
        description="Plugins or extensions (ids or packages) users may not enable or disable, "
        "from the UI or through /api/config/page_config; stored choices about them are ignored.",
    )
    lock_all_plugins: bool = Field(
        False,
        description="Forbid enabling or disabling any plugin from the UI; the user's stored "
        "choices are ignored.",
    )
