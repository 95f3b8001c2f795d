"""Routes of the frontend plugin: the JupyterLab pages and the files they load.

Pages (``/lab``, ``/lab/tree/...``, ``/lab/workspaces/...``, ``/doc/...``) need a login; the
core redirects browsers without one to ``/login``. The core bundle (``/static/lab/``), the
favicons and the prebuilt extensions' files (``/lab/extensions/``) are public, as in Jupyter:
they hold no user data, and the login page itself shows the favicon.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Annotated

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from junction.errors import NotFound
from junction.plugin import use
from junction.plugins.frontend.models import PageRequest
from junction.plugins.frontend.service import FRONTEND, FrontendService
from junction.staticfiles import resolve_inside, send_file

__all__ = ["FAVICONS_DIR", "favicon_response", "router"]

router = APIRouter(tags=["frontend"], include_in_schema=False)

FAVICONS_DIR = Path(__file__).parent / "favicons"
"""Junction's own favicons (idle and busy), served at ``static/favicons/``."""

# Notebook 7's pages name one icon per kind of page; Junction has one icon for all.
_FAVICON_ALIASES = {
    f"favicon-{kind}.ico": "favicon.ico" for kind in ("notebook", "file", "terminal", "console")
}

Frontend = Annotated[FrontendService, use(FRONTEND)]

# Workspace names as JupyterLab accepts them in URLs.
_WORKSPACE = re.compile(r"[a-zA-Z0-9\-_]+")

_GET_HEAD = ["GET", "HEAD"]


async def _page(frontend: FrontendService, page: PageRequest) -> HTMLResponse:
    if not _WORKSPACE.fullmatch(page.workspace):
        raise NotFound(f"invalid workspace name: {page.workspace!r}")
    html = await frontend.render_page(page)
    return HTMLResponse(html, headers={"Cache-Control": "no-cache"})


def _add_pages(app: str) -> None:
    """Register the page routes of ``/lab`` (multiple documents) or ``/doc`` (single)."""
    base = PageRequest(mode="single-document" if app == "doc" else "multiple-document")

    @router.api_route(f"/{app}", methods=_GET_HEAD, name=f"{app}_page")
    async def app_page(frontend: Frontend) -> HTMLResponse:
        """The JupyterLab shell in the default workspace."""
        return await _page(frontend, base)

    @router.api_route(f"/{app}/", methods=_GET_HEAD, name=f"{app}_slash")
    async def app_slash(request: Request) -> RedirectResponse:
        """``/lab/`` is ``/lab``."""
        query = request.url.query
        target = request.url.path.rstrip("/") + (f"?{query}" if query else "")
        return RedirectResponse(target, status_code=302)

    @router.api_route(f"/{app}/tree", methods=_GET_HEAD, name=f"{app}_tree_root")
    @router.api_route(f"/{app}/tree/{{path:path}}", methods=_GET_HEAD, name=f"{app}_tree")
    async def app_tree(frontend: Frontend, path: str = "") -> HTMLResponse:
        """The shell opening ``path`` (a file or a folder under the root dir)."""
        page = PageRequest(mode=base.mode, tree_path=path)
        return await _page(frontend, page)

    @router.api_route(
        f"/{app}/workspaces/{{workspace}}", methods=_GET_HEAD, name=f"{app}_workspace"
    )
    async def app_workspace(frontend: Frontend, workspace: str) -> HTMLResponse:
        """The shell in a named workspace."""
        return await _page(frontend, PageRequest(mode=base.mode, workspace=workspace))

    @router.api_route(
        f"/{app}/workspaces/{{workspace}}/tree/{{path:path}}",
        methods=_GET_HEAD,
        name=f"{app}_workspace_tree",
    )
    async def app_workspace_tree(frontend: Frontend, workspace: str, path: str) -> HTMLResponse:
        """The shell in a named workspace, opening ``path``."""
        page = PageRequest(mode=base.mode, workspace=workspace, tree_path=path)
        return await _page(frontend, page)


_add_pages("lab")
_add_pages("doc")


@router.api_route("/static/lab/{path:path}", methods=_GET_HEAD)
async def core_bundle(request: Request, frontend: Frontend, path: str) -> Response:
    """A file of JupyterLab's prebuilt core bundle."""
    target = resolve_inside(frontend.layout.static_dir, path)
    if target is None:
        raise NotFound(f"no such file: static/lab/{path}")
    return await send_file(request, target)


async def favicon_response(request: Request, name: str) -> Response:
    """The favicon ``name`` (Notebook 7's per-page names included); NotFound if none."""
    target = resolve_inside(FAVICONS_DIR, _FAVICON_ALIASES.get(name, name))
    if target is None:
        raise NotFound(f"no such favicon: {name}")
    return await send_file(request, target, immutable=False)


@router.api_route("/static/favicons/{name}", methods=_GET_HEAD)
async def favicon(request: Request, name: str) -> Response:
    """The idle and busy favicons the shells link to."""
    return await favicon_response(request, name)


@router.api_route("/favicon.ico", methods=_GET_HEAD)
async def root_favicon(request: Request) -> Response:
    """Browsers ask for ``/favicon.ico`` on pages that name none (the API, errors)."""
    return await send_file(request, FAVICONS_DIR / "favicon.ico", immutable=False)


@router.api_route("/lab/extensions/{path:path}", methods=_GET_HEAD)
async def extension_file(request: Request, frontend: Frontend, path: str) -> Response:
    """A file of a prebuilt extension: ``<name>/...`` or ``@<org>/<name>/...``."""
    parts = path.split("/")
    split = 2 if parts[0].startswith("@") else 1
    name, relative = "/".join(parts[:split]), "/".join(parts[split:])
    target = await frontend.find_extension_file(name, relative)
    if target is None:
        raise NotFound(f"no such extension file: {path}")
    return await send_file(request, target)
