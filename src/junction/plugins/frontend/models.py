"""Values the frontend plugin works with: installed apps, prebuilt extensions, pages."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

__all__ = [
    "FederatedExtension",
    "LabLayout",
    "NotebookLayout",
    "NotebookPage",
    "PageRequest",
    "PathKind",
]

NotebookPage = Literal["tree", "notebooks", "edit", "consoles", "terminals"]
"""Notebook 7's pages; each has a template ``<page>.html`` and is its ``notebookPage``."""

PathKind = Literal["directory", "notebook", "file", "missing"]
"""What lies at a path under the root dir (``missing`` also for hidden items)."""


@dataclass(frozen=True, slots=True)
class LabLayout:
    """An installed JupyterLab application directory (``<prefix>/share/jupyter/lab``).

    ``static_dir`` holds the core bundle and ``index.html``; ``schemas_dir`` the settings
    schemas of core plugins; ``themes_dir`` the core themes; ``settings_dir`` the admin's
    ``overrides.json`` and ``page_config.json``.
    """

    app_dir: Path
    app_name: str
    app_version: str

    @property
    def static_dir(self) -> Path:
        """The prebuilt core bundle: ``main.<hash>.js``, chunks, fonts, ``index.html``."""
        return self.app_dir / "static"

    @property
    def schemas_dir(self) -> Path:
        """Settings schemas of the core plugins, ``<package>/<plugin>.json``."""
        return self.app_dir / "schemas"

    @property
    def themes_dir(self) -> Path:
        """Core theme CSS and assets, ``<package>/index.css``."""
        return self.app_dir / "themes"

    @property
    def settings_dir(self) -> Path:
        """The app settings dir: ``overrides.json`` and ``page_config.json`` live here."""
        return self.app_dir / "settings"


@dataclass(frozen=True, slots=True)
class NotebookLayout:
    """An installed Notebook 7 (the ``notebook`` package): its page templates and bundle.

    Notebook 7 shares JupyterLab's schemas, themes, settings and prebuilt extensions; only
    its core bundle (``static/``) and HTML templates (``templates/``) are its own.
    """

    package_dir: Path
    version: str

    @property
    def static_dir(self) -> Path:
        """The prebuilt core bundle: ``main.<hash>.js``, chunks, fonts."""
        return self.package_dir / "static"

    @property
    def templates_dir(self) -> Path:
        """The Jinja2 templates of the pages: ``tree.html``, ``notebooks.html``..."""
        return self.package_dir / "templates"

    @property
    def custom_css(self) -> Path:
        """The placeholder ``custom.css`` served when the user has none."""
        return self.package_dir / "custom" / "custom.css"


@dataclass(frozen=True, slots=True)
class FederatedExtension:
    """A prebuilt ("federated") JupyterLab extension found in a labextensions directory.

    ``load`` is the remote entry script relative to the extension directory; ``extension``,
    ``mime_extension`` and ``style`` are the module federation entry points it exposes.
    ``package`` is its whole ``package.json`` and ``install`` its ``install.json`` (which
    Python package installed it), when present.
    """

    name: str
    version: str
    path: Path
    load: str
    extension: str | None = None
    mime_extension: str | None = None
    style: str | None = None
    entrypoints: Any = None
    disabled_extensions: tuple[str, ...] = ()
    description: str = ""
    url: str = ""
    install: dict[str, Any] | None = None
    package: dict[str, Any] = field(default_factory=dict, repr=False)

    def page_config_entry(self) -> dict[str, Any]:
        """The entry the frontend expects in ``federated_extensions``."""
        entry: dict[str, Any] = {"name": self.name, "load": self.load}
        if self.extension is not None:
            entry["extension"] = self.extension
        if self.mime_extension is not None:
            entry["mimeExtension"] = self.mime_extension
        if self.style is not None:
            entry["style"] = self.style
        entry["entrypoints"] = self.entrypoints
        return entry


@dataclass(frozen=True, slots=True)
class PageRequest:
    """What a page URL asks for: the shell mode, the workspace, and the path to open.

    ``notebook_page`` is set for Notebook 7's pages (which have no mode or workspace) and
    None for JupyterLab's.
    """

    mode: Literal["multiple-document", "single-document"] = "multiple-document"
    workspace: str = "default"
    tree_path: str = ""
    notebook_page: NotebookPage | None = None
