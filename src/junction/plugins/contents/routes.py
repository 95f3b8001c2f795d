"""HTTP routes of the contents plugin: ``/api/contents`` (checkpoints, trust),
``/api/resolvePath``, ``/files`` and the ``/view`` page.

Routes only parse and check the request, call :data:`CONTENTS` and encode the answer with
orjson. Query values are checked here with Jupyter's messages (``Format 'x' is invalid``);
JSON bodies are read with a size limit (``max_body_mb``) and validated against the models
of ``models.py``, so malformed JSON, wrong types and missing fields are 400s that say what
is wrong.
"""

from __future__ import annotations

import functools
import html
import re
from datetime import UTC, datetime
from email.utils import format_datetime
from typing import Annotated, Any, TypeVar
from urllib.parse import quote

import anyio
import orjson
from fastapi import APIRouter, Depends, Request
from fastapi.requests import HTTPConnection
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from pydantic import BaseModel, ValidationError

from junction.auth.identity import Authenticator
from junction.auth.ownership import may_access
from junction.auth.xssi import cross_site_read
from junction.errors import BadRequest, Forbidden, PayloadTooLarge
from junction.fastroutes import fast_route
from junction.plugin import use
from junction.plugins.contents.files import FileStream, media_type_for
from junction.plugins.contents.models import (
    CheckpointModel,
    ContentsModel,
    CreateRequest,
    Model,
    RenameRequest,
    SaveRequest,
)
from junction.plugins.contents.service import (
    CONTENTS,
    BadFormat,
    BadType,
    CheckpointNotFound,
    ContentsService,
    FileNotFound,
    PageOrder,
    Reach,
    check_path,
    guard_request,
    link_check,
    visibility,
    visible_entries,
)
from junction.plugins.kernels.service import KERNELS, KernelService
from junction.services import AUTH, SERVER, ServerState, ServiceRegistry

__all__ = ["router"]

router = APIRouter(tags=["contents"])

Contents = Annotated[ContentsService, use(CONTENTS)]
Server = Annotated[ServerState, use(SERVER)]
Auth = Annotated[Authenticator, use(AUTH)]


async def _optional_kernels(conn: HTTPConnection) -> KernelService | None:
    """The kernels service when the kernels plugin runs in this server, else None."""
    registry: ServiceRegistry = conn.app.state.services
    return registry.get_optional(KERNELS)


Kernels = Annotated[KernelService | None, Depends(_optional_kernels)]
M = TypeVar("M", bound=BaseModel)

CHECKPOINT_ID = re.compile(r"[\w-]+")
MIB = 1 << 20
MAX_COUNT = 2**63 - 1
"""The largest ``offset`` or ``length`` taken (what a signed 64-bit integer holds)."""
ORDERS: dict[str, PageOrder] = {"name": "name", "directory": "directory"}
"""The values of ``order``: how the entries of a directory page are ordered."""
_MODEL: dict[int | str, dict[str, Any]] = {200: {"model": ContentsModel}}
_CREATED: dict[int | str, dict[str, Any]] = {201: {"model": ContentsModel}}
_CHECKPOINTS: dict[int | str, dict[str, Any]] = {200: {"model": list[CheckpointModel]}}


def _json(data: Any, status: int = 200, headers: dict[str, str] | None = None) -> Response:
    return Response(
        orjson.dumps(data), status_code=status, headers=headers, media_type="application/json"
    )


def _location(server: ServerState, path: str, *rest: str) -> str:
    parts = [quote(path)] if path else []
    parts.extend(quote(part) for part in rest)
    return server.settings.base_url + "api/contents/" + "/".join(parts)


@functools.lru_cache(maxsize=1024)
def _http_date(iso: str) -> str:
    # Cached: clients poll the same files, and parsing the date costs more than the read.
    moment = datetime.strptime(iso, "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=UTC)
    return format_datetime(moment, usegmt=True)


def _model_response(
    model: Model, server: ServerState, *, status: int = 200, location: bool = True
) -> Response:
    headers = {"Last-Modified": _http_date(model["last_modified"])}
    if location:
        headers["Location"] = _location(server, model["path"])
    return _json(model, status, headers)


def _order(value: str | None) -> PageOrder | None:
    if value is None:
        return None
    order = ORDERS.get(value)
    if order is None:
        shown = value if len(value) <= 40 else value[:40] + "..."
        raise BadRequest(f"order must be 'name' or 'directory', got {shown!r}")
    return order


def _flag(value: str, message: str) -> bool:
    if value not in ("0", "1"):
        raise BadRequest(message)
    return value == "1"


def _count(value: str | None, name: str, *, low: int, high: int = MAX_COUNT) -> int | None:
    if value is None:
        return None
    # At most 32 digits: beyond any bound, and far below int()'s limit on digit strings.
    digits = value.isascii() and value.isdigit() and len(value) <= 32
    number = int(value) if digits else -1
    if not low <= number <= high:
        shown = value if len(value) <= 40 else value[:40] + "..."
        raise BadRequest(f"{name} must be an integer from {low} to {high}, got {shown!r}")
    return number


async def _read_json(request: Request, limit: int) -> Any:
    """The JSON body, or None when there is none; 413 above ``limit`` bytes."""
    too_large = f"request body is larger than {limit // MIB} MiB (max_body_mb)"
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > limit:
        raise PayloadTooLarge(too_large)
    chunks = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise PayloadTooLarge(too_large)
        chunks.append(chunk)
    raw = b"".join(chunks)
    if not raw.strip():
        return None
    try:
        return orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise BadRequest(f"request body is not valid JSON: {exc}") from None


def _parse(model: type[M], data: Any) -> M:
    if not isinstance(data, dict):
        raise BadRequest("request body must be a JSON object")
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        problems = []
        for error in exc.errors():
            where = ".".join(str(part) for part in error["loc"])
            problems.append(f"{where}: {error['msg']}" if where else error["msg"])
        raise BadRequest("; ".join(problems)) from None


# -- checkpoints and trust (before the catch-all path routes) ----------------------------


@router.get(
    "/api/contents/{path:path}/checkpoints", responses={200: {"model": list[CheckpointModel]}}
)
async def list_checkpoints(path: str, request: Request, contents: Contents) -> Response:
    """The file's checkpoints: ``[]`` or ``[{"id": "checkpoint", "last_modified"}]``."""
    await check_path(request, path, "read")
    return _json(await contents.list_checkpoints(path))


@router.post(
    "/api/contents/{path:path}/checkpoints",
    status_code=201,
    responses={201: {"model": CheckpointModel}},
)
async def create_checkpoint(
    path: str, request: Request, contents: Contents, server: Server
) -> Response:
    """Save the file's current content as its checkpoint."""
    await check_path(request, path, "write")
    checkpoint = await contents.create_checkpoint(path)
    location = _location(server, path, "checkpoints", checkpoint["id"])
    return _json(checkpoint, 201, {"Location": location})


def _checkpoint_id(path: str, checkpoint_id: str) -> str:
    if CHECKPOINT_ID.fullmatch(checkpoint_id) is None:
        raise CheckpointNotFound(f"checkpoint {checkpoint_id!r} of {path!r} does not exist")
    return checkpoint_id


@router.post("/api/contents/{path:path}/checkpoints/{checkpoint_id}", status_code=204)
async def restore_checkpoint(
    path: str, checkpoint_id: str, request: Request, contents: Contents
) -> Response:
    """Replace the file by its checkpoint."""
    await check_path(request, path, "write")
    await contents.restore_checkpoint(path, _checkpoint_id(path, checkpoint_id))
    return Response(status_code=204)


@router.delete("/api/contents/{path:path}/checkpoints/{checkpoint_id}", status_code=204)
async def delete_checkpoint(
    path: str, checkpoint_id: str, request: Request, contents: Contents
) -> Response:
    """Remove a checkpoint."""
    await check_path(request, path, "write")
    await contents.delete_checkpoint(path, _checkpoint_id(path, checkpoint_id))
    return Response(status_code=204)


@router.post("/api/contents/{path:path}/trust", status_code=201)
async def trust_notebook(path: str, request: Request, contents: Contents) -> Response:
    """Sign the notebook as it is, so its outputs read as trusted until it changes."""
    await check_path(request, path, "write")
    await contents.trust_notebook(path)
    return Response(status_code=201)


# -- the contents model ------------------------------------------------------------------


async def _get(
    path: str,
    request: Request,
    contents: ContentsService,
    server: ServerState,
) -> Response:
    reach = await check_path(request, path, "read")
    query = request.query_params
    kind = query.get("type")
    if kind not in (None, "directory", "file", "notebook"):
        kind = "file"  # Jupyter reads unknown types as files
    format = query.get("format")
    if format not in (None, "text", "base64"):
        raise BadFormat(f"Format {format!r} is invalid")
    content = _flag(query.get("content", "1"), f"Content {query.get('content')!r} is invalid")
    want_hash = _flag(
        query.get("hash", "0"),
        f"Hash argument {query.get('hash')!r} is invalid. It must be '0' or '1'.",
    )
    limit = _count(query.get("limit"), "limit", low=1, high=contents.settings.max_page_size)
    after = query.get("after")
    order = _order(query.get("order"))
    offset = _count(query.get("offset"), "offset", low=0)
    length = _count(query.get("length"), "length", low=0)
    if limit is not None:
        if kind not in (None, "directory"):
            raise BadType("limit and after page through directories; drop type or use directory")
        visible = visibility(request, reach)
        model = await contents.list_directory(
            path,
            limit=limit,
            after=after,
            order=order or "name",
            visible=visible,
            links=link_check(request),
        )
        headers = {"Last-Modified": _http_date(model["last_modified"])}
        following = model["pagination"]["next"]
        if following is not None:
            link = str(request.url.include_query_params(after=following))
            headers["Link"] = f'<{link}>; rel="next"'
        return _json(model, 200, headers)
    if after is not None:
        raise BadRequest("after needs limit")
    if order is not None:
        raise BadRequest("order needs limit")
    model = await contents.get(
        path,
        type=kind,
        format=format,
        content=content,
        hash=want_hash,
        offset=offset,
        length=length,
        links=link_check(request),
    )
    if reach is Reach.ANCESTOR and isinstance(model.get("content"), list):
        model["content"] = visible_entries(request, model["content"])
    return _model_response(model, server, location=False)


async def _post(
    path: str, request: Request, contents: ContentsService, server: ServerState
) -> Response:
    data = await _read_json(request, contents.settings.max_body_mb * MIB)
    body = CreateRequest() if data is None else _parse(CreateRequest, data)
    await check_path(request, path, "write")
    if body.copy_from:
        # A folder above what the caller reaches may be listed (filtered), never copied whole.
        if await check_path(request, body.copy_from, "read") is not Reach.FULL:
            raise FileNotFound(f"No such file or directory: {body.copy_from.strip('/')}")
        model = await contents.copy(body.copy_from, path)
    else:
        kind = body.type or ""
        if kind not in ("", "directory", "file", "notebook"):
            kind = "file"
        model = await contents.new_untitled(path, type=kind, ext=body.ext or "")
    return _model_response(model, server, status=201)


async def _put(
    path: str, request: Request, contents: ContentsService, server: ServerState
) -> Response:
    await check_path(request, path, "write")
    data = await _read_json(request, contents.settings.max_body_mb * MIB)
    if data is None or data == {}:  # Jupyter: PUT without a model creates an untitled file
        model = await contents.new_untitled(path)
        return _model_response(model, server, status=201)
    result = await contents.save(path, _parse(SaveRequest, data))
    return _model_response(result.model, server, status=201 if result.created else 200)


async def _patch(
    path: str, request: Request, contents: ContentsService, server: ServerState
) -> Response:
    data = await _read_json(request, contents.settings.max_body_mb * MIB)
    if data is None:
        raise BadRequest("JSON body missing")
    body = _parse(RenameRequest, data)
    await check_path(request, path, "write", entry=True)
    await check_path(request, body.path, "write", entry=True)
    return _model_response(await contents.rename(path, body.path), server)


async def _get_now(request: Request) -> Response:
    services: ServiceRegistry = request.app.state.services
    path = request.path_params.get("path", "")
    return await _get(path, request, services.get(CONTENTS), services.get(SERVER))


@router.get("/api/contents/{path:path}", responses=_MODEL)
@fast_route(_get_now)
async def get_contents(path: str, request: Request, contents: Contents, server: Server) -> Response:
    """The model of a file, notebook or directory.

    Query: ``type``, ``format`` (text|base64), ``content`` (0|1), ``hash`` (0|1); for files
    ``offset`` and ``length`` (bytes) read a range; for directories ``limit``, ``after``
    and ``order`` (name|directory) return one page of entries (see docs/contents.md).
    """
    return await _get(path, request, contents, server)


@router.get("/api/contents", include_in_schema=False)
@fast_route(_get_now)
async def get_root(request: Request, contents: Contents, server: Server) -> Response:
    """The root directory (same query as :func:`get_contents`)."""
    return await _get("", request, contents, server)


@router.post("/api/contents/{path:path}", status_code=201, responses=_CREATED)
async def create_contents(
    path: str, request: Request, contents: Contents, server: Server
) -> Response:
    """Create an untitled file, notebook or folder in directory ``path``, or a copy.

    Body (optional): ``{"type", "ext"}`` or ``{"copy_from": "<path>"}``.
    """
    return await _post(path, request, contents, server)


@router.post("/api/contents", include_in_schema=False, status_code=201)
async def create_in_root(request: Request, contents: Contents, server: Server) -> Response:
    """Create in the root directory (see :func:`create_contents`)."""
    return await _post("", request, contents, server)


@router.put("/api/contents/{path:path}", responses={**_MODEL, **_CREATED})
async def save_contents(
    path: str, request: Request, contents: Contents, server: Server
) -> Response:
    """Save a model at ``path`` (200, or 201 when new), or one chunk of an upload.

    Body: ``{"type", "format", "content"}``, plus ``"chunk": 1, 2, ..., -1`` for uploads.
    """
    return await _put(path, request, contents, server)


@router.put("/api/contents", include_in_schema=False)
async def save_root(request: Request, contents: Contents, server: Server) -> Response:
    """PUT on the root (see :func:`save_contents`)."""
    return await _put("", request, contents, server)


@router.patch("/api/contents/{path:path}", responses=_MODEL)
async def rename_contents(
    path: str, request: Request, contents: Contents, server: Server
) -> Response:
    """Rename or move: body ``{"path": "<new path>"}``; 409 if the target exists."""
    return await _patch(path, request, contents, server)


@router.patch("/api/contents", include_in_schema=False)
async def rename_root(request: Request, contents: Contents, server: Server) -> Response:
    """PATCH on the root (refused)."""
    return await _patch("", request, contents, server)


@router.delete("/api/contents/{path:path}", status_code=204)
async def delete_contents(path: str, request: Request, contents: Contents) -> Response:
    """Delete a file or folder (to the trash when configured)."""
    await check_path(request, path, "write", entry=True)
    await contents.delete(path)
    return Response(status_code=204)


@router.delete("/api/contents", include_in_schema=False, status_code=204)
async def delete_root(request: Request, contents: Contents) -> Response:
    """DELETE on the root (refused)."""
    await check_path(request, "", "write")
    await contents.delete("")
    return Response(status_code=204)


# -- legacy and raw files ----------------------------------------------------------------


@router.api_route(
    "/api/notebooks/{path:path}",
    methods=["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE"],
    include_in_schema=False,
)
async def legacy_notebooks(path: str, request: Request, server: Server) -> RedirectResponse:
    """The old ``/api/notebooks`` URLs: redirect to ``/api/contents`` (307 keeps the method)."""
    status = 302 if request.method in ("GET", "HEAD") else 307
    target = _location(server, path.strip("/"))
    if request.url.query:
        target += "?" + request.url.query
    return RedirectResponse(target, status_code=status)


@router.api_route("/files/{path:path}", methods=["GET", "HEAD"])
async def raw_file(path: str, request: Request, contents: Contents, auth: Auth) -> Response:
    """The file's bytes, streamed; ``?download=1`` makes it an attachment (notebooks always
    are). Range requests are supported. HTML and SVG run sandboxed (CSP).

    A cookie-authenticated read must come from our pages (same-host ``Referer`` or
    ``?_xsrf=``), else 403: see :mod:`junction.auth.xssi`.
    """
    problem = cross_site_read(request.scope, auth)
    if problem is not None:
        raise Forbidden(problem)
    if await check_path(request, path, "read") is not Reach.FULL:
        raise FileNotFound(f"File does not exist: {path}")
    opened = await contents.open_file(path)
    try:
        media_type = await anyio.to_thread.run_sync(media_type_for, opened)
    except BaseException:
        opened.file.close()
        raise
    download = bool(request.query_params.get("download")) or opened.name.lower().endswith(".ipynb")
    return FileStream(
        opened, media_type=media_type, download=download, head=request.method == "HEAD"
    )


# -- paths named outside the contents API ------------------------------------------------


@router.get("/api/resolvePath")
async def resolve_path(request: Request, contents: Contents, kernels: Kernels) -> Response:
    """Which file a path names, as JupyterLab asks for paths in tracebacks and links.

    Query: ``path`` (an API path, or an absolute path under the root, ``~`` expanded) and
    ``kernel`` (optional id). Answers ``{"resolved": [{"scope": "server", "path"}]}`` with
    the API path when the item exists; a ``kernel`` this server does not run adds
    ``"unresolved": [{"scope": "kernel", "reason"}]``. See docs/contents.md.
    """
    path = request.query_params.get("path")
    if path is None:
        raise BadRequest("Missing argument path")
    body: dict[str, Any] = {"resolved": []}
    guard_request(request)  # the lookup follows links before any check of the path
    found = await _resolve_reached(request, contents, path)
    if found is not None:
        try:
            if await check_path(request, found, "read") is not Reach.FULL:
                found = None
        except (FileNotFound, Forbidden):
            found = None
    if found is not None:
        body["resolved"].append({"scope": "server", "path": found})
    kernel_id = request.query_params.get("kernel")
    if kernel_id and not _kernel_visible(request, kernels, kernel_id):
        reason = f"Kernel {kernel_id} could not be found"
        body["unresolved"] = [{"scope": "kernel", "reason": reason}]
    return _json(body)


async def _resolve_reached(request: Request, contents: ContentsService, path: str) -> str | None:
    """:meth:`ContentsService.resolve_path`, but an API path the caller does not reach by
    its name is not looked up at all: the answer takes no longer for another user's files
    that exist than for those that do not."""
    if not path.startswith(("/", "~")):
        try:
            if await check_path(request, path, "read") is not Reach.FULL:
                return None
        except (FileNotFound, Forbidden, BadRequest):
            return None
    return await contents.resolve_path(path)


def _kernel_visible(request: Request, kernels: KernelService | None, kernel_id: str) -> bool:
    """Whether the kernel runs and the caller may see it: another user's kernel looks
    exactly like a missing one, as under ``/api/kernels``."""
    if kernels is None or not kernels.exists(kernel_id):
        return False
    return may_access(request, "kernels", kernel_id, "read")


_VIEW_PAGE = """<!DOCTYPE html>
<html>
<head>
<meta charset="utf-8">
<title>{title}</title>
<meta name="viewport" content="width=device-width, initial-scale=1.0">
<style>
html, body, #container {{ height: 100%; }}
body, #container {{ overflow: hidden; margin: 0; }}
#iframe {{ width: 100%; height: 100%; border: none; }}
</style>
</head>
<body>
<div id="container">
<iframe id="iframe" sandbox="allow-scripts" src="{src}"></iframe>
</div>
</body>
</html>
"""


@router.get("/view/{path:path}", response_class=HTMLResponse)
async def view_file(
    path: str, request: Request, contents: Contents, server: Server
) -> HTMLResponse:
    """A page showing the file in a sandboxed iframe of ``/files/{path}`` (scripts run in
    an origin of their own); 404 unless ``path`` is a readable regular file."""
    api = path.strip("/")
    if await check_path(request, api, "read") is not Reach.FULL:
        raise FileNotFound(f"File does not exist: {api}")
    try:
        model = await contents.get(api, type="file", content=False)
    except BadType:
        raise FileNotFound(f"File does not exist: {api}") from None
    src = server.settings.base_url + "files/" + quote(model["path"])
    page = _VIEW_PAGE.format(title=html.escape(model["name"]), src=html.escape(src, quote=True))
    return HTMLResponse(page)
