"""The HTML shell: JupyterLab's own ``index.html`` template, rendered for each page.

The template ships in the app's ``static/`` directory and is written for Jinja2: it puts the
page config into ``<script id="jupyter-config-data">`` (HTML-safe JSON), links the favicons
under ``<base_url>static/favicons/`` and loads ``main.<hash>.js``. Rendering it, rather than
keeping a copy, keeps the shell in step with whichever JupyterLab is installed.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from jinja2 import Environment, FileSystemLoader, Template, select_autoescape

__all__ = ["Shell"]


class Shell:
    """JupyterLab's ``index.html``, loaded once and rendered per page load."""

    def __init__(self, template: Template) -> None:
        self._template = template

    @classmethod
    def load(cls, static_dir: Path) -> Shell:
        """Read and compile ``static_dir/index.html``. Blocking: call it at startup.

        Raises :class:`jinja2.TemplateError` (a missing or broken template).
        """
        environment = Environment(
            loader=FileSystemLoader(static_dir),
            autoescape=select_autoescape(default=True, default_for_string=True),
            auto_reload=False,
        )
        return cls(environment.get_template("index.html"))

    def render(self, page_config: dict[str, Any], *, base_url: str, ws_url: str = "") -> str:
        """The page for ``page_config``; ``base_url`` prefixes the favicon links."""
        return self._template.render(
            page_config=page_config, base_url=base_url, ws_url=ws_url, custom_css=False
        )
