"""Jupyter server routes the UI needs besides contents and kernels: config sections, events,
notebook export.
"""

from __future__ import annotations

import contextlib
import json
import logging
import time
from typing import Annotated, Any
from urllib.parse import quote

import anyio
from fastapi import APIRouter, Body, Request, WebSocket
from fastapi.responses import RedirectResponse, Response
from pydantic import ValidationError
from starlette.websockets import WebSocketDisconnect

from junction.auth.identity import Authenticator, User
from junction.auth.middleware import current_user
from junction.auth.xssi import cross_site_read
from junction.errors import BadRequest, Forbidden, PayloadTooLarge
from junction.events import (
    EVENTS,
    Event,
    EventBus,
    EventFilter,
    ServerEvent,
    TooManyEvents,
)
from junction.plugin import use
from junction.plugins.contents.service import FileNotFound, Reach, check_path
from junction.plugins.lab.models import EventPost
from junction.plugins.lab.nbconvert import Converted, Nbconvert
from junction.plugins.lab.service import CONFIG, NBCONVERT, ConfigStore
from junction.services import AUTH

__all__ = ["router"]

log = logging.getLogger("junction.lab")

router = APIRouter()

Config = Annotated[ConfigStore, use(CONFIG)]
Events = Annotated[EventBus, use(EVENTS)]
Export = Annotated[Nbconvert, use(NBCONVERT)]

# --- config sections --------------------------------------------------------------------


@router.get("/api/config/{section}", tags=["config"])
async def get_config(config: Config, section: str) -> dict[str, Any]:
    """A config section (``{}`` if never written)."""
    return await config.get(section)


@router.patch("/api/config/{section}", tags=["config"])
async def patch_config(
    config: Config, section: str, patch: Annotated[dict[str, Any], Body()]
) -> dict[str, Any]:
    """Deep-merge into a config section (``null`` removes a key); returns the result."""
    return await config.update(section, patch)


@router.put("/api/config/{section}", tags=["config"], status_code=204)
async def put_config(
    config: Config, section: str, data: Annotated[dict[str, Any], Body()]
) -> Response:
    """Replace a config section."""
    await config.replace(section, data)
    return Response(status_code=204)


# --- events -----------------------------------------------------------------------------


MAX_EVENT_BYTES = 64 * 1024
"""The largest ``POST /api/events`` body (413 above)."""
EVENTS_PER_SECOND = 20.0
"""How many events one user may post per second, on average (429 beyond)..."""
EVENTS_BURST = 100
"""... and at once, after a quiet while."""

_ERROR = {"content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}}


class _Buckets:
    """A token bucket per user: ``rate`` tokens a second, at most ``burst`` kept."""

    def __init__(self, rate: float, burst: int) -> None:
        self.rate = rate
        self.burst = burst
        self._buckets: dict[str | None, tuple[float, float]] = {}

    def take(self, key: str | None) -> bool:
        """Take one token for ``key``; False when there is none."""
        now = time.monotonic()
        tokens, then = self._buckets.get(key, (float(self.burst), now))
        tokens = min(float(self.burst), tokens + (now - then) * self.rate)
        if tokens < 1:
            self._buckets[key] = (tokens, now)
            return False
        self._buckets[key] = (tokens - 1, now)
        return True


def _buckets(request: Request) -> _Buckets:
    buckets = getattr(request.app.state, "event_posts", None)
    if not isinstance(buckets, _Buckets):
        buckets = _Buckets(EVENTS_PER_SECOND, EVENTS_BURST)
        request.app.state.event_posts = buckets
    return buckets


async def _read_event(request: Request) -> EventPost:
    too_large = f"an event may have at most {MAX_EVENT_BYTES} bytes"
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared[:20]) > MAX_EVENT_BYTES:
        raise PayloadTooLarge(too_large)
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
        if len(body) > MAX_EVENT_BYTES:
            raise PayloadTooLarge(too_large)
    try:
        return EventPost.model_validate_json(bytes(body))
    except ValidationError as exc:
        problems = []
        for error in exc.errors():
            where = ".".join(str(part) for part in error["loc"])
            problems.append(f"{where}: {error['msg']}" if where else error["msg"])
        raise BadRequest("; ".join(problems)) from None


@router.post(
    "/api/events",
    tags=["events"],
    status_code=204,
    openapi_extra={
        "requestBody": {
            "required": True,
            "content": {"application/json": {"schema": {"$ref": "#/components/schemas/EventPost"}}},
        }
    },
    responses={
        400: {"description": "Unknown schema, or data failing it", **_ERROR},
        403: {"description": "A schema only the server emits", **_ERROR},
        413: {"description": f"A body above {MAX_EVENT_BYTES} bytes", **_ERROR},
        429: {"description": "More events than the caller may post now", **_ERROR},
    },
)
async def post_event(request: Request, events: Events) -> Response:
    """Validate an event against its registered schema and deliver it to subscribers, as
    the caller's.

    Only schemas registered for clients are accepted (the server's own events cannot be
    forged, 403), a body may have 64 KiB (413), and each user may post 20 events a second
    on average, 100 at once (429).
    """
    event = await _read_event(request)
    if not _buckets(request).take(current_user(request.scope).username):
        raise TooManyEvents(f"at most {EVENTS_PER_SECOND:g} events a second; try again later")
    if not events.from_clients(event.schema_id):
        raise ServerEvent(event.schema_id)
    events.emit(event.schema_id, event.data, version=str(event.version))
    return Response(status_code=204)


@router.websocket("/api/events/subscribe")
async def subscribe_events(websocket: WebSocket, events: Events) -> None:
    """Stream events as JSON text frames until either side goes away: those about the
    caller's own actions and objects, or every event for an admin (multi-user mode) and the
    token holder (single-user mode).

    Nothing is expected from the client; its frames are read only to notice it leaving.
    """
    accept = _visible_to(current_user(websocket.scope), websocket.app.state.services.get(AUTH))
    await websocket.accept()
    client_left = False
    async with events.subscribe(accept) as stream, anyio.create_task_group() as tg:

        async def forward() -> None:
            try:
                async for event in stream:
                    await websocket.send_text(json.dumps(event))
            except (WebSocketDisconnect, OSError):
                pass  # the client left while an event went out: the receive loop ends too
            finally:
                tg.cancel_scope.cancel()  # the bus closed: the server is stopping

        tg.start_soon(forward)
        try:
            while (await websocket.receive())["type"] != "websocket.disconnect":
                pass
        except WebSocketDisconnect:
            pass
        client_left = True
        tg.cancel_scope.cancel()
    if not client_left:
        with contextlib.suppress(WebSocketDisconnect, RuntimeError):  # it may leave meanwhile
            await websocket.close(code=1001)


def _visible_to(user: User, auth: Authenticator) -> EventFilter:
    """Whether ``user`` may see an event: the authorizer decides, with the event's user as
    the owner (``read`` on ``events``: own objects for users, anyone's for admins)."""

    def accept(event: Event) -> bool:
        return bool(auth.authorizer.may_access(user, "read", "events", event.get("username")))

    return accept


@router.get("/lsp/status", tags=["lab"])
async def language_servers() -> dict[str, Any]:
    """No language servers: JupyterLab's LSP plugin asks at every start, even when off."""
    return {"version": 2, "sessions": {}, "specs": {}}


# --- nbconvert --------------------------------------------------------------------------


@router.get("/api/nbconvert", tags=["nbconvert"])
async def list_exporters(export: Export) -> dict[str, dict[str, str]]:
    """The export formats (nbconvert exporters) and their media types."""
    return await export.formats()


def _export_response(result: Converted, *, download: bool) -> Response:
    headers = {"Cache-Control": "no-store, no-cache, must-revalidate, max-age=0"}
    if download or result.media_type == "application/zip":
        headers["Content-Disposition"] = f"attachment; filename*=UTF-8''{quote(result.filename)}"
    else:
        # Shown in the browser, an export runs the notebook's HTML and scripts: sandbox them
        # in an opaque origin so they cannot use the user's session.
        headers["Content-Security-Policy"] = "frame-ancestors 'self'; sandbox allow-scripts"
    media_type = result.media_type
    if media_type.startswith("text/") or media_type == "application/json":
        media_type += "; charset=utf-8"
    return Response(result.body, media_type=media_type, headers=headers)


@router.get("/nbconvert/{format_name}/{path:path}", tags=["nbconvert"])
async def export_notebook(
    request: Request,
    export: Export,
    auth: Annotated[Authenticator, use(AUTH)],
    format_name: str,
    path: str,
    download: str = "false",
) -> Response:
    """A notebook converted to ``format_name``; ``?download=true`` makes it an attachment.

    ``format_name`` must be one ``/api/nbconvert`` lists (404 otherwise). A path that is not
    a notebook redirects to its raw file. A cookie-authenticated read must come from our
    pages, as for ``/files`` (403 otherwise): see :mod:`junction.auth.xssi`.
    """
    problem = cross_site_read(request.scope, auth)
    if problem is not None:
        raise Forbidden(problem)
    format_name = await export.check_format(format_name)
    if await check_path(request, path, "read") is not Reach.FULL:  # multi-user: 404 if not theirs
        raise FileNotFound(f"File does not exist: {path.strip('/')}")
    result = await export.export(format_name, path.strip("/"))
    if result is None:
        return RedirectResponse(_files_url(path), status_code=302)
    return _export_response(result, download=download.lower() in ("1", "true"))


@router.post("/nbconvert/{format_name}", tags=["nbconvert"])
async def export_posted(
    export: Export, format_name: str, model: Annotated[dict[str, Any], Body()]
) -> Response:
    """Convert a notebook sent in the body as ``{"name", "content"}``."""
    format_name = await export.check_format(format_name)
    content = model.get("content")
    if not isinstance(content, dict):
        raise BadRequest('the body must be {"name": ..., "content": <notebook JSON>}')
    name = str(model.get("name") or "notebook.ipynb")
    result = await export.convert(format_name, content, name=name)
    return _export_response(result, download=False)


def _files_url(path: str) -> str:
    return "../" * (path.count("/") + 2) + "files/" + quote(path.strip("/"))
