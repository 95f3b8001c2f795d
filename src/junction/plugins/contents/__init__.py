"""The contents plugin: files, notebooks and directories under ``root_dir``.

Serves ``/api/contents`` (Jupyter's contents API, checkpoints and notebook trust included),
``/api/resolvePath``, ``/files`` and ``/view``.

Map of the package:

- ``service.py``: the :class:`ContentsService` Protocol, the :data:`CONTENTS` key, errors.
- ``models.py``: wire models (the contents model, request bodies).
- ``routes.py``: the HTTP routes; ``files.py``: the streamed ``/files`` response.
- ``settings.py``: :class:`ContentsSettings`.
- ``filesystem.py``: :class:`LocalContents`, the service over the local disk, built from:
  ``paths.py`` (API path to disk path, never outside the root), ``entries.py`` (models from
  ``stat``), ``listing.py`` (fast, paginated listings; ``scanning.py``: pages in
  directory order), ``reading.py`` (bytes, ranges,
  hashes), ``notebooks.py`` (nbformat checks), ``atomic.py`` (atomic writes, path locks),
  ``saving.py`` and ``uploads.py`` (saves, chunked uploads), ``creating.py`` (untitled
  items, copies), ``trees.py`` (folder copies and moves through directory descriptors),
  ``checkpoints.py``, ``trust.py`` (notebook signatures, nbformat's notary), and
  ``oserrors.py`` (OS errors to contents errors).

With the frontend plugin, the page config tells JupyterLab ``allow_hidden_files`` and
``delete_to_trash`` (see :func:`lifespan`), and in multi-user mode the user's home
(``preferredPath``). ``service.py`` also holds the hook deciding which paths a user reaches
(:data:`CONTENTS_ACCESS`, provided by the ``users`` plugin); every route naming a path asks it.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from junction.auth.middleware import REQUEST_USER
from junction.events import EVENTS
from junction.plugin import Plugin, PluginContext
from junction.plugins.contents.filesystem import LocalContents, Trash
from junction.plugins.contents.routes import router
from junction.plugins.contents.service import (
    CONTENTS,
    CONTENTS_ACCESS,
    ContentsAccess,
    ContentsService,
)
from junction.plugins.contents.settings import ContentsSettings
from junction.plugins.contents.trust import NotebookTrust, default_notary_dir
from junction.plugins.frontend.service import FRONTEND
from junction.plugins.kernels.service import KERNELS

__all__ = [
    "CONTENTS",
    "CONTENTS_ACCESS",
    "ContentsAccess",
    "ContentsService",
    "ContentsSettings",
    "LocalContents",
    "plugin",
]

log = logging.getLogger("junction.contents")


def find_trash() -> Trash | None:
    """``send2trash`` when it is installed, else None (deletes are then permanent)."""
    try:
        from send2trash import send2trash  # type: ignore[import-untyped]  # no type hints
    except ImportError:
        return None
    trash: Trash = send2trash
    return trash


@asynccontextmanager
async def lifespan(ctx: PluginContext[ContentsSettings]) -> AsyncIterator[None]:
    """Provide :data:`CONTENTS` over ``root_dir``; discard unfinished uploads at shutdown.

    With the frontend running, JupyterLab's page config learns whether hidden files are
    served (``allow_hidden_files``) and whether deleting moves to the trash
    (``delete_to_trash``: true only when the setting is on and the trash is available),
    so the file browser shows dot-files and words its delete dialog accordingly.
    """
    trash = find_trash() if ctx.settings.delete_to_trash else None
    if ctx.settings.delete_to_trash and trash is None:
        log.warning("delete_to_trash is on but send2trash is not installed: deletes are final")
    trust = NotebookTrust(ctx.settings.notary_dir or default_notary_dir())
    contents = LocalContents(ctx.server.root_dir, ctx.settings, trash=trash, trust=trust)
    if contents.paths.fd_path is None:
        log.warning(
            "this system cannot name open files (no /proc/self/fd): saves cannot check "
            "that a directory renamed meanwhile still lies inside root_dir"
        )
    contents.events = ctx.get_optional(EVENTS)
    ctx.provide(CONTENTS, contents)
    frontend = ctx.get_optional(FRONTEND)
    if frontend is not None:
        keys = {
            "allow_hidden_files": ctx.settings.allow_hidden,
            "delete_to_trash": contents.trash is not None,
        }

        async def contents_page_config() -> dict[str, Any]:
            config: dict[str, Any] = dict(keys)
            access = ctx.get_optional(CONTENTS_ACCESS)
            user = REQUEST_USER.get()
            home = None if access is None or user is None else access.home(user)
            if home:  # multi-user mode: the file browser opens in the user's home
                config["preferredPath"] = "/" + home
            return config

        frontend.add_page_config(contents_page_config)
    try:
        yield
    finally:
        await contents.aclose()


plugin = Plugin(
    name="contents",
    description="Files, notebooks and directories under root_dir (/api/contents, /files, "
    "/view, /api/resolvePath).",
    settings=ContentsSettings,
    routers=[router],
    lifespan=lifespan,
    provides=[CONTENTS],
    optional=[FRONTEND, KERNELS, CONTENTS_ACCESS, EVENTS],
)
