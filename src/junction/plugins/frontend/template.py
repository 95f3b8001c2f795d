"""The HTML shells: JupyterLab's own ``index.html`` and Notebook 7's page templates.

JupyterLab's template ships in the app's ``static/`` directory and is written for Jinja2:
it puts the page config into ``<script id="jupyter-config-data">`` (HTML-safe JSON), links
the favicons under ``<base_url>static/favicons/`` and loads ``main.<hash>.js``. Rendering
it, rather than keeping a copy, keeps the shell in step with whichever JupyterLab is
installed.

Notebook 7's ``templates/<page>.html`` work the same way; each adds its ``notebookPage`` to
the page config, links ``<base_url>custom/custom.css`` and loads Notebook 7's bundle from
``fullStaticUrl``.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from junction.plugins.frontend.models import NotebookPage

if TYPE_CHECKING:
    from jinja2 import Environment, Template

__all__ = ["NOTEBOOK_PAGES", "NotebookShell", "Shell"]

NOTEBOOK_PAGES: tuple[NotebookPage, ...] = ("tree", "notebooks", "edit", "consoles", "terminals")


def _environment(directory: Path) -> Environment:
    # Imported here: the contents plugin imports this package for its service key, and
    # servers without the frontend plugin need not load Jinja2 (about 1.6 MB).
    from jinja2 import Environment, FileSystemLoader, select_autoescape

    return Environment(
        loader=FileSystemLoader(directory),
        autoescape=select_autoescape(default=True, default_for_string=True),
        auto_reload=False,
    )


class Shell:
    """JupyterLab's ``index.html``, loaded once and rendered per page load."""

    def __init__(self, template: Template) -> None:
        self._template = template

    @classmethod
    def load(cls, static_dir: Path) -> Shell:
        """Read and compile ``static_dir/index.html``. Blocking: call it at startup.

        Raises :class:`jinja2.TemplateError` (a missing or broken template).
        """
        return cls(_environment(static_dir).get_template("index.html"))

    def render(self, page_config: dict[str, Any], *, base_url: str, ws_url: str = "") -> str:
        """The page for ``page_config``; ``base_url`` prefixes the favicon links."""
        return self._template.render(
            page_config=page_config, base_url=base_url, ws_url=ws_url, custom_css=False
        )


class NotebookShell:
    """Notebook 7's page templates, loaded once and rendered per page load."""

    def __init__(self, templates: dict[NotebookPage, Template]) -> None:
        self._templates = templates

    @classmethod
    def load(cls, templates_dir: Path) -> NotebookShell:
        """Read and compile every page template. Blocking: call it at startup.

        Raises :class:`jinja2.TemplateError` (a missing or broken template).
        """
        environment = _environment(templates_dir)
        return cls({page: environment.get_template(f"{page}.html") for page in NOTEBOOK_PAGES})

    def render(
        self, page: NotebookPage, page_config: dict[str, Any], *, base_url: str, ws_url: str = ""
    ) -> str:
        """The page ``page`` for ``page_config``; ``base_url`` prefixes favicons and CSS."""
        return self._templates[page].render(
            page_config=page_config, base_url=base_url, ws_url=ws_url, custom_css=True
        )
