"""HTTP and WebSocket routes of the collaboration plugin."""

from __future__ import annotations

import json
from typing import Annotated, Any

from fastapi import APIRouter, Body, Response, WebSocket
from fastapi.responses import JSONResponse
from starlette.requests import HTTPConnection

from junction.auth.middleware import current_user
from junction.auth.ownership import may_access
from junction.errors import Forbidden, HTTPError, NotFound, ServiceUnavailable
from junction.plugin import use
from junction.plugins.collaboration.connection import serve_client
from junction.plugins.collaboration.leases import RoomOwnedElsewhere
from junction.plugins.collaboration.models import ExecuteRequest, SessionRequest, SessionResponse
from junction.plugins.collaboration.rooms import OWNED_ELSEWHERE, Rooms, owned_elsewhere_reason
from junction.plugins.collaboration.service import COLLABORATION, CollaborationService
from junction.plugins.contents.service import Reach, check_path
from junction.plugins.kernels.service import KERNELS
from junction.services import AUTH

__all__ = ["router"]

router = APIRouter(tags=["collaboration"])

Collaboration = Annotated[CollaborationService, use(COLLABORATION)]

UNKNOWN_SESSION = 1003
ROOM_NOT_FOUND = 4404
ROOM_FAILED = 4500


def _may(conn: HTTPConnection, action: str) -> bool:
    auth = conn.app.state.services.get(AUTH)
    return bool(auth.authorizer.is_authorized(current_user(conn.scope), action, "contents"))


async def _reaches(conn: HTTPConnection, path: str, action: str) -> bool:
    """Whether the caller reaches the file at ``path`` for ``action`` (multi-user mode: their
    home, folders shared with them; always in single-user mode)."""
    try:
        return await check_path(conn, path, action) is Reach.FULL
    except HTTPError:
        return False


async def _room_path(rooms: Rooms, room_id: str) -> str | None:
    """The path of the file behind a document room (None: no such file, or not a document)."""
    _, _, file_id = room_id.rpartition(":")
    if room_id.count(":") != 2 or not file_id:
        return None
    return await rooms.path_of(file_id)


def _rooms(service: CollaborationService) -> Rooms:
    if not isinstance(service, Rooms):
        raise ServiceUnavailable("the collaboration routes need the collaboration plugin's rooms")
    return service


@router.put(
    "/api/collaboration/session/{path:path}",
    status_code=200,
    responses={
        201: {"description": "The file got its id now", "model": SessionResponse},
        404: {"description": "No such file"},
    },
)
async def open_session(
    path: str,
    body: Annotated[SessionRequest, Body()],
    collaboration: Collaboration,
    response: Response,
    conn: HTTPConnection,
) -> SessionResponse:
    """The id of the file at ``path`` (its room is ``{format}:{type}:{fileId}``) and this
    server process's session id; 201 when the file was given its id now."""
    if not _may(conn, "read"):
        raise Forbidden("you may not read files")
    if not await _reaches(conn, path, "read"):
        raise NotFound(f"No such file: {path}")
    file_id, created = await collaboration.index(path)
    if created:
        response.status_code = 201
    return SessionResponse(
        format=body.format, type=body.type, fileId=file_id, sessionId=collaboration.session_id
    )


@router.websocket("/api/collaboration/room/{room_id}")
async def room_websocket(websocket: WebSocket, room_id: str, collaboration: Collaboration) -> None:
    """A shared document's sync and awareness (y-protocols, binary frames). Closes with
    1003 and a JSON reason for another server process's ``sessionId``, 4404 for an unknown
    room or file, 4503 and a JSON reason (``owned_elsewhere``, the ``owner`` sessionId) for a
    room another server owns, 4500 when the room could not load, 1002 for a malformed
    message, 1008 for an update from a user who may only read, 1009 above
    ``max_update_size``."""
    rooms = _rooms(collaboration)
    if not _may(websocket, "read"):
        denial = Forbidden("you may not read files")
        await websocket.send_denial_response(
            JSONResponse(denial.body(), status_code=denial.status_code)
        )
        return
    session = websocket.query_params.get("sessionId")
    await websocket.accept()
    if session is not None and session != rooms.session_id:
        reason: dict[str, Any] = {
            "reason": "unknown_session",
            "sessionId": session,
            "reloadable": True,
        }
        await websocket.close(UNKNOWN_SESSION, json.dumps(reason))
        return
    writable = _may(websocket, "write")
    path = await _room_path(rooms, room_id)
    if path is not None:
        # Another user's file looks missing, as through the Contents API.
        if not await _reaches(websocket, path, "read"):
            await websocket.close(ROOM_NOT_FOUND, f"no such room: {room_id}"[:120])
            return
        writable = writable and await _reaches(websocket, path, "write")
    try:
        room = await rooms.get(room_id, user=current_user(websocket.scope).username)
    except RoomOwnedElsewhere as exc:
        await websocket.close(OWNED_ELSEWHERE, owned_elsewhere_reason(exc.owner))
        return
    except HTTPError as exc:
        code = ROOM_NOT_FOUND if exc.status_code == 404 else ROOM_FAILED
        await websocket.close(code, exc.message[:120])
        return
    await serve_client(
        websocket,
        room,
        read_only=not writable,
        max_message_size=rooms.settings.max_update_size,
        user=current_user(websocket.scope),
    )


@router.post(
    "/api/kernels/{kernel_id}/execute",
    status_code=202,
    responses={
        404: {"description": "No such kernel, room or cell"},
        503: {"description": "The kernels plugin is not running"},
    },
)
async def execute_cell(
    kernel_id: str,
    body: Annotated[ExecuteRequest, Body()],
    collaboration: Collaboration,
    conn: HTTPConnection,
) -> Response:
    """Run a code cell of a shared notebook on the kernel; the server writes its outputs into
    the document, so they are kept with no browser open. Answers 202 once the cell is busy."""
    if not may_access(conn, "kernels", kernel_id, "execute"):
        raise NotFound(f"Kernel does not exist: {kernel_id}")
    if not _may(conn, "write"):
        raise Forbidden("you may not change files")
    rooms = _rooms(collaboration)
    path = await _room_path(rooms, body.document_id)
    if path is not None and not await _reaches(conn, path, "read"):
        raise NotFound(f"no such room: {body.document_id!r}")
    if path is not None and not await _reaches(conn, path, "write"):
        raise Forbidden("you may not change this notebook")
    executor = rooms.executor
    if executor is None:
        raise ServiceUnavailable("server-side execution needs the kernels plugin")
    await conn.app.state.services.get(KERNELS).get(kernel_id)  # 404 for an unknown kernel
    await executor.execute(kernel_id, body.document_id, body.cell_id)
    return Response(status_code=202)
