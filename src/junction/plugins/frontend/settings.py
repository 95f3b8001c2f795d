"""Settings of the frontend plugin (the ``[frontend]`` table of the config file)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from pydantic import Field

from junction.plugin import PluginSettings

__all__ = ["FrontendSettings"]


class FrontendSettings(PluginSettings):
    """Where JupyterLab's files come from and what the HTML shell tells the browser."""

    app_dir: Path | None = Field(
        None,
        description="JupyterLab application directory (holds static/, schemas/, themes/). "
        "Unset: $JUPYTERLAB_DIR, else the installed jupyterlab's <prefix>/share/jupyter/lab.",
    )
    extra_labextensions_path: list[Path] = Field(
        default_factory=list,
        description="Directories of prebuilt extensions searched before the standard "
        "Jupyter data dirs (share/jupyter/labextensions).",
    )
    disabled_extensions: list[str] = Field(
        default_factory=list,
        description="Extensions or plugins (e.g. '@jupyterlab/apputils-extension:announcements') "
        "the UI must not load, on top of labconfig/page_config.json.",
    )
    page_config: dict[str, Any] = Field(
        default_factory=dict,
        description="Extra page config keys merged last into every page "
        '(e.g. {"exposeAppInBrowser": true}).',
    )
