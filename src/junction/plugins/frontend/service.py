"""The frontend service: where the UIs' built files are, and the page config they read.

Other plugins use it through :data:`FRONTEND`: the lab plugin finds schemas, themes and
prebuilt extensions here, and any plugin can add keys to the page config the HTML shells
of JupyterLab and Notebook 7 carry::

    async def hub_page_config() -> dict[str, Any]:
        return {"hubPrefix": "/hub/"}

    ctx.get(FRONTEND).add_page_config(hub_page_config)

A plugin that knows the files under the root dir tells Notebook 7's tree page what lies at
a path with :meth:`FrontendService.set_path_inspector`.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping, Sequence
from pathlib import Path
from typing import Any, Protocol

from starlette.requests import HTTPConnection

from junction.errors import NotFound
from junction.plugin import ServiceKey
from junction.plugins.frontend.models import (
    FederatedExtension,
    LabLayout,
    NotebookLayout,
    PageRequest,
    PathKind,
)

__all__ = [
    "FRONTEND",
    "FrontendService",
    "NotebookNotInstalled",
    "PageConfigProvider",
    "PathInspector",
]

PageConfigProvider = Callable[[], Awaitable[Mapping[str, Any]]]
"""Returns page config keys to merge into every page; awaited on each page load."""

PathInspector = Callable[[HTTPConnection, str], Awaitable[PathKind]]
"""Says what lies at an API path (``''`` is the root dir) for the request's user; awaited on
each tree page load.

May raise the domain errors of a malformed or forbidden path (400, 403).
"""


class NotebookNotInstalled(NotFound):
    """A Notebook 7 page or file was asked for, but the ``notebook`` package is not installed."""

    def __init__(self) -> None:
        super().__init__(
            "Notebook 7 is not installed on this server: install it with "
            "\"pip install 'notebook>=7.2,<8'\" (or 'jupyter-junction[lab]') and restart"
        )


class FrontendService(Protocol):
    """JupyterLab's installed application and prebuilt extensions, as the server sees them."""

    @property
    def layout(self) -> LabLayout:
        """The application directory and its parts (static, schemas, themes, settings)."""
        ...

    @property
    def notebook(self) -> NotebookLayout | None:
        """Notebook 7's installed files, or None when the ``notebook`` package is missing."""
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

    def set_path_inspector(self, inspector: PathInspector) -> None:
        """Let ``inspector`` say what lies at a path, for Notebook 7's tree page.

        Called once, in the lifespan of the plugin that serves the files. Without one, the
        tree page opens any path it is given (as JupyterLab's ``/lab/tree`` does).
        """
        ...

    async def inspect_path(self, conn: HTTPConnection, path: str) -> PathKind | None:
        """What lies at ``path`` for ``conn``'s user, per the path inspector; None when
        there is none."""
        ...

    async def page_config(self, page: PageRequest) -> dict[str, Any]:
        """The complete page config for one page load (what ``jupyter-config-data`` holds).

        Raises :class:`NotebookNotInstalled` for a Notebook 7 page without Notebook 7.
        """
        ...

    async def render_page(self, page: PageRequest) -> str:
        """The HTML shell for one page load, with its page config embedded.

        JupyterLab's ``index.html``, or Notebook 7's ``<page>.html`` for its pages; raises
        :class:`NotebookNotInstalled` for a Notebook 7 page without Notebook 7.
        """
        ...


FRONTEND: ServiceKey[FrontendService] = ServiceKey("frontend")
