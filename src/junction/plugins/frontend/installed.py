"""``InstalledLab``: the frontend service over an installed JupyterLab and its extensions."""

from __future__ import annotations

import itertools
import logging
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import anyio

from junction.jsonfiles import merge
from junction.plugins.frontend.extensions import scan_extensions
from junction.plugins.frontend.models import FederatedExtension, LabLayout, PageRequest
from junction.plugins.frontend.pageconfig import (
    apply_extensions,
    disabled_list,
    normalize,
    read_static_page_config,
    server_page_config,
)
from junction.plugins.frontend.service import PageConfigProvider
from junction.plugins.frontend.settings import FrontendSettings
from junction.plugins.frontend.template import Shell
from junction.settings import ServerSettings
from junction.staticfiles import resolve_inside

__all__ = ["InstalledLab"]

log = logging.getLogger("junction.frontend")


class InstalledLab:
    """Serves what ``pip install jupyterlab`` (and any prebuilt extension) put on disk.

    The extension list is read again on every page load, in a worker thread, and kept for
    the file requests that follow; a file request for an extension not seen yet triggers one
    more scan, so an extension installed while the server runs works after a reload.
    """

    def __init__(
        self,
        layout: LabLayout,
        labextensions_path: Sequence[Path],
        settings: FrontendSettings,
        server: ServerSettings,
        shell: Shell,
    ) -> None:
        self._layout = layout
        self._shell = shell
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

    async def page_config(self, page: PageRequest) -> dict[str, Any]:
        """Assemble the page config, layer by layer (see :mod:`.pageconfig`)."""
        extra = self._settings.extra_labextensions_path
        config = server_page_config(self._layout, self._server, self._path, extra)
        static = await anyio.to_thread.run_sync(read_static_page_config, self._layout)
        merge(config, static)
        apply_extensions(config, await self.federated_extensions())
        for provider in self._providers:
            merge(config, normalize(await provider()))
        switched_off = dict.fromkeys(self._settings.disabled_extensions, True)
        merge(config, {"disabledExtensions": switched_off})
        merge(config, normalize(self._settings.page_config))
        config["disabledExtensions"] = disabled_list(config.get("disabledExtensions"))
        config["mode"] = page.mode
        config["workspace"] = page.workspace
        config["treePath"] = page.tree_path
        config["store_id"] = next(self._store_ids)
        return config

    async def render_page(self, page: PageRequest) -> str:
        """The HTML shell with this page's config."""
        config = await self.page_config(page)
        return self._shell.render(config, base_url=self._server.base_url)
