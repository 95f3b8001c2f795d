"""``InstalledLab``: the frontend service over an installed JupyterLab (and Notebook 7, when
it is installed) and their prebuilt extensions."""

from __future__ import annotations

import itertools
import logging
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import anyio
from starlette.requests import HTTPConnection

from junction.jsonfiles import merge
from junction.plugins.frontend.extensions import scan_extensions
from junction.plugins.frontend.models import (
    FederatedExtension,
    LabLayout,
    NotebookLayout,
    PageRequest,
    PathKind,
)
from junction.plugins.frontend.pageconfig import (
    apply_extensions,
    disabled_list,
    normalize,
    notebook_page_config,
    read_static_page_config,
    server_page_config,
)
from junction.plugins.frontend.service import (
    NotebookNotInstalled,
    PageConfigProvider,
    PathInspector,
)
from junction.plugins.frontend.settings import FrontendSettings
from junction.plugins.frontend.template import NotebookShell, Shell
from junction.settings import ServerSettings
from junction.staticfiles import resolve_inside

__all__ = ["InstalledLab"]

log = logging.getLogger("junction.frontend")

COLLABORATION_UI = "@jupyter/collaboration-extension"
"""jupyter-collaboration's UI extension, switched off when no plugin turns RTC on."""


class InstalledLab:
    """Serves what ``pip install jupyterlab`` (and any prebuilt extension) put on disk.

    The extension list is read again on every page load, in a worker thread, and kept for
    the file requests that follow; a file request for an extension not seen yet triggers one
    more scan, so an extension installed while the server runs works after a reload.

    ``notebook`` and ``notebook_shell`` are Notebook 7's files and templates (both None when
    it is not installed); ``terminals_available`` is whether a terminals service runs.
    """

    def __init__(
        self,
        layout: LabLayout,
        labextensions_path: Sequence[Path],
        settings: FrontendSettings,
        server: ServerSettings,
        shell: Shell,
        *,
        notebook: NotebookLayout | None = None,
        notebook_shell: NotebookShell | None = None,
        terminals_available: bool = False,
    ) -> None:
        self._layout = layout
        self._shell = shell
        self._notebook = notebook if notebook_shell is not None else None
        self._notebook_shell = notebook_shell
        self._terminals_available = terminals_available
        self._inspector: PathInspector | None = None
        self._path = tuple(labextensions_path)
        self._settings = settings
        self._server = server
        self._providers: list[PageConfigProvider] = []
        self._extensions: dict[str, FederatedExtension] = {}
        self._store_ids = itertools.count()

    @property
    def layout(self) -> LabLayout:
        """The application directory and its parts."""
        return self._layout

    @property
    def notebook(self) -> NotebookLayout | None:
        """Notebook 7's installed files, or None."""
        return self._notebook

    @property
    def labextensions_path(self) -> Sequence[Path]:
        """Directories searched for prebuilt extensions, highest priority first."""
        return self._path

    async def federated_extensions(self) -> list[FederatedExtension]:
        """Scan the labextensions path now (in a worker thread) and remember the result."""
        found = await anyio.to_thread.run_sync(scan_extensions, self._path)
        self._extensions = {extension.name: extension for extension in found}
        return found

    async def find_extension_file(self, name: str, relative: str) -> Path | None:
        """The file ``relative`` inside extension ``name``, or None."""
        extension = self._extensions.get(name)
        if extension is None:
            await self.federated_extensions()
            extension = self._extensions.get(name)
        if extension is None:
            return None
        return resolve_inside(extension.path, relative)

    def add_page_config(self, provider: PageConfigProvider) -> None:
        """Merge ``provider()`` into every page config from now on."""
        self._providers.append(provider)

    def set_path_inspector(self, inspector: PathInspector) -> None:
        """Let ``inspector`` say what lies at a path, for Notebook 7's tree page."""
        self._inspector = inspector

    async def inspect_path(self, conn: HTTPConnection, path: str) -> PathKind | None:
        """What lies at ``path`` for ``conn``'s user; None without an inspector."""
        return None if self._inspector is None else await self._inspector(conn, path)

    async def page_config(self, page: PageRequest) -> dict[str, Any]:
        """Assemble the page config, layer by layer (see :mod:`.pageconfig`)."""
        extra = self._settings.extra_labextensions_path
        config = server_page_config(
            self._layout,
            self._server,
            self._path,
            extra,
            terminals_available=self._terminals_available,
        )
        if page.notebook_page is not None:
            if self._notebook is None:
                raise NotebookNotInstalled()
            merge(config, notebook_page_config(self._notebook, self._server))
        static = await anyio.to_thread.run_sync(read_static_page_config, self._layout)
        merge(config, static)
        apply_extensions(config, await self.federated_extensions())
        for provider in self._providers:
            merge(config, normalize(await provider()))
        if config.get("disableRTC", True):
            # No collaboration plugin: jupyter-collaboration's UI (awareness, user menu) would
            # still open its global awareness room and retry the refused WebSocket forever.
            merge(config, {"disabledExtensions": {COLLABORATION_UI: True}})
        if page.notebook_page is not None:
            # The collaboration front end fails on Notebook 7 pages (no status bar for its
            # timeline, no kernel id for server-side runs): they keep the classic model.
            merge(config, {"disableRTC": True, "serverSideExecution": False})
        switched_off = dict.fromkeys(
            (*self._settings.disabled_extensions, *self._settings.unserved_extensions), True
        )
        merge(config, {"disabledExtensions": switched_off})
        merge(config, normalize(self._settings.page_config))
        config["disabledExtensions"] = disabled_list(config.get("disabledExtensions"))
        if page.notebook_page is not None:
            # Notebook 7 has no modes or workspaces; only its tree page names a path.
            if page.notebook_page == "tree":
                config["treePath"] = page.tree_path
            return config
        config["mode"] = page.mode
        config["workspace"] = page.workspace
        config["treePath"] = page.tree_path
        config["store_id"] = next(self._store_ids)
        return config

    async def render_page(self, page: PageRequest) -> str:
        """The HTML shell with this page's config: JupyterLab's, or Notebook 7's page."""
        config = await self.page_config(page)
        if page.notebook_page is not None:
            assert self._notebook_shell is not None  # page_config raised otherwise
            return self._notebook_shell.render(
                page.notebook_page, config, base_url=self._server.base_url
            )
        return self._shell.render(config, base_url=self._server.base_url)
