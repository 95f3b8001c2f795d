"""Notebook 7's pages and files, served from the installed ``notebook`` package.

Pages, as Notebook 7 routes them (all need a login):

- ``/tree/{path}``: the file browser at a directory; a notebook redirects to its
  ``/notebooks/`` page, any other file to ``/files/``, and a missing or hidden path is 404
  (when a plugin serving the files set a path inspector; else the page opens any path);
- ``/notebooks/{path}`` (a directory redirects to ``/tree/``), ``/edit/{path}``,
  ``/consoles/{path}``, ``/terminals/{name}``: the page opens the document itself;
- ``/custom/custom.css``: the user's ``<jupyter config dir>/custom/custom.css``, else an
  empty placeholder.

``/static/notebook/`` holds the bundle (public, like JupyterLab's). ``/terminals/{name}``
matches one segment only, so the terminals WebSocket (``/terminals/websocket/{name}``) is
never taken for a page. Without Notebook 7 installed, every route answers 404 saying how to
install it.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any
from urllib.parse import quote

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from jupyter_core.paths import jupyter_config_dir

from junction.errors import NotFound
from junction.plugin import use
from junction.plugins.frontend.models import NotebookLayout, NotebookPage, PageRequest
from junction.plugins.frontend.routes import favicon_response
from junction.plugins.frontend.service import FRONTEND, FrontendService, NotebookNotInstalled
from junction.services import SERVER, ServerState
from junction.staticfiles import resolve_inside, send_file

__all__ = ["router"]

router = APIRouter(tags=["frontend"], include_in_schema=False)

Frontend = Annotated[FrontendService, use(FRONTEND)]
Server = Annotated[ServerState, use(SERVER)]

_GET_HEAD = ["GET", "HEAD"]

Responses = dict[int | str, dict[str, Any]]
_MISSING: Responses = {404: {"description": "Notebook 7 is not installed"}}
_TREE: Responses = {
    302: {"description": "A file: to /notebooks/<path> (a notebook) or /files/<path>"},
    404: {"description": "No such directory, or Notebook 7 is not installed"},
}
_NOTEBOOKS: Responses = {302: {"description": "A directory: to /tree/<path>"}, **_MISSING}


def _installed(frontend: FrontendService) -> NotebookLayout:
    if frontend.notebook is None:
        raise NotebookNotInstalled()
    return frontend.notebook


async def _page(frontend: FrontendService, page: NotebookPage, tree_path: str = "") -> Response:
    request = PageRequest(notebook_page=page, tree_path=tree_path)
    html = await frontend.render_page(request)
    return HTMLResponse(html, headers={"Cache-Control": "no-cache"})


def _redirect(server: ServerState, area: str, path: str) -> RedirectResponse:
    target = f"{server.settings.base_url}{area}" + (f"/{quote(path)}" if path else "")
    return RedirectResponse(target, status_code=302)


async def _tree(
    request: Request, server: ServerState, frontend: FrontendService, path: str
) -> Response:
    _installed(frontend)
    path = path.strip("/")
    kind = await frontend.inspect_path(request, path)
    if kind == "missing":
        raise NotFound(f"no such directory: {path}")
    if kind == "notebook":
        return _redirect(server, "notebooks", path)
    if kind == "file":
        return _redirect(server, "files", path)
    return await _page(frontend, "tree", path)


@router.api_route("/tree", methods=_GET_HEAD, name="notebook_tree_root", responses=_TREE)
async def tree_root(request: Request, server: Server, frontend: Frontend) -> Response:
    """The file browser at the root directory."""
    return await _tree(request, server, frontend, "")


@router.api_route("/tree/{path:path}", methods=_GET_HEAD, name="notebook_tree", responses=_TREE)
async def tree(request: Request, server: Server, frontend: Frontend, path: str) -> Response:
    """The file browser at directory ``path``; files redirect to the page that opens them."""
    return await _tree(request, server, frontend, path)


@router.api_route(
    "/notebooks", methods=_GET_HEAD, name="notebook_notebooks_root", responses=_NOTEBOOKS
)
async def notebooks_root(server: Server, frontend: Frontend) -> Response:
    """No notebook named: the file browser at the root directory."""
    _installed(frontend)
    return _redirect(server, "tree", "")


@router.api_route(
    "/notebooks/{path:path}", methods=_GET_HEAD, name="notebook_notebooks", responses=_NOTEBOOKS
)
async def notebooks(request: Request, server: Server, frontend: Frontend, path: str) -> Response:
    """The notebook page (the page opens ``path``); a directory redirects to the tree."""
    _installed(frontend)
    path = path.strip("/")
    if not path or await frontend.inspect_path(request, path) == "directory":
        return _redirect(server, "tree", path)
    return await _page(frontend, "notebooks")


@router.api_route("/edit", methods=_GET_HEAD, name="notebook_edit_root", responses=_MISSING)
async def edit_root(frontend: Frontend) -> Response:
    """The text editor page with no file named."""
    return await _page(frontend, "edit")


@router.api_route("/edit/{path:path}", methods=_GET_HEAD, name="notebook_edit", responses=_MISSING)
async def edit(frontend: Frontend, path: str) -> Response:
    """The text editor page (the page opens ``path``)."""
    return await _page(frontend, "edit")


@router.api_route(
    "/consoles/{path:path}", methods=_GET_HEAD, name="notebook_consoles", responses=_MISSING
)
async def consoles(frontend: Frontend, path: str) -> Response:
    """The console page (the page starts or attaches to a console for ``path``)."""
    return await _page(frontend, "consoles")


@router.api_route(
    "/terminals/{name}", methods=_GET_HEAD, name="notebook_terminals", responses=_MISSING
)
async def terminals(frontend: Frontend, name: str) -> Response:
    """The terminal page (the page opens terminal ``name``)."""
    return await _page(frontend, "terminals")


@router.api_route("/custom/custom.css", methods=_GET_HEAD, responses=_MISSING)
async def custom_css(request: Request, frontend: Frontend) -> Response:
    """The user's custom CSS, linked from every Notebook 7 page."""
    notebook = _installed(frontend)
    user = Path(jupyter_config_dir()) / "custom" / "custom.css"
    target = user if user.is_file() else notebook.custom_css
    return await send_file(request, target, immutable=False)


@router.api_route("/static/notebook/favicons/{name}", methods=_GET_HEAD, responses=_MISSING)
async def notebook_favicon(request: Request, frontend: Frontend, name: str) -> Response:
    """The favicon the console page names under Notebook 7's static URL."""
    _installed(frontend)
    return await favicon_response(request, name)


@router.api_route("/static/notebook/{path:path}", methods=_GET_HEAD, responses=_MISSING)
async def notebook_bundle(request: Request, frontend: Frontend, path: str) -> Response:
    """A file of Notebook 7's prebuilt core bundle."""
    target = resolve_inside(_installed(frontend).static_dir, path)
    if target is None:
        raise NotFound(f"no such file: static/notebook/{path}")
    return await send_file(request, target)
