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
    unserved_extensions: list[str] = Field(
        default_factory=lambda: [
            "@pyviz/jupyterlab_pyviz",
            "@voila-dashboards/jupyterlab-preview",
        ],
        description="Installed extensions whose server half is a jupyter_server extension "
        "Junction does not run (Panel's /panel-preview, Voila's /voila/render): they are not "
        "loaded, since every call they make would answer 404. Run such apps through the apps "
        "plugin instead; set to [] to load them anyway.",
    )
    page_config: dict[str, Any] = Field(
        default_factory=dict,
        description="Extra page config keys merged last into every page "
        '(e.g. {"exposeAppInBrowser": true}).',
    )
