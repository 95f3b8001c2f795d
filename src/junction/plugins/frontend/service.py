"""The frontend service: where JupyterLab's built files are, and the page config it reads.

Other plugins use it through :data:`FRONTEND`: the lab plugin finds schemas, themes and
prebuilt extensions here, and any plugin can add keys to the page config the HTML shell
carries (a terminals plugin would set ``terminalsAvailable``)::

    async def terminals_page_config() -> dict[str, Any]:
        return {"terminalsAvailable": True}

    ctx.get(FRONTEND).add_page_config(terminals_page_config)
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping, Sequence
from pathlib import Path
from typing import Any, Protocol

from junction.plugin import ServiceKey
from junction.plugins.frontend.models import FederatedExtension, LabLayout, PageRequest

__all__ = ["FRONTEND", "FrontendService", "PageConfigProvider"]

PageConfigProvider = Callable[[], Awaitable[Mapping[str, Any]]]
"""Returns page config keys to merge into every page; awaited on each page load."""


class FrontendService(Protocol):
    """JupyterLab's installed application and prebuilt extensions, as the server sees them."""

    @property
    def layout(self) -> LabLayout:
        """The application directory and its parts (static, schemas, themes, settings)."""
        ...

    @property
    def labextensions_path(self) -> Sequence[Path]:
        """Directories searched for prebuilt extensions, highest priority first."""
        ...

    async def federated_extensions(self) -> list[FederatedExtension]:
        """The prebuilt extensions installed now, the first found per name.

        Called on every page load and by the lab APIs (settings schemas, themes, licenses),
        so ``pip install some-labextension`` needs a page reload, not a server restart.
        """
        ...

    async def find_extension_file(self, name: str, relative: str) -> Path | None:
        """The file ``relative`` inside the prebuilt extension ``name``, or None.

        ``relative`` is a ``/``-separated path from a URL; paths that try to leave the
        extension's directory are refused (None).
        """
        ...

    def add_page_config(self, provider: PageConfigProvider) -> None:
        """Merge the keys ``provider()`` returns into every page config from now on.

        Called by plugins in their lifespan; providers run after the on-disk page config
        files and before the ``frontend.page_config`` setting, which always wins.
        """
        ...

    async def page_config(self, page: PageRequest) -> dict[str, Any]:
        """The complete page config for one page load (what ``jupyter-config-data`` holds)."""
        ...

    async def render_page(self, page: PageRequest) -> str:
        """The HTML shell for one page load, with its page config embedded."""
        ...


FRONTEND: ServiceKey[FrontendService] = ServiceKey("frontend")
