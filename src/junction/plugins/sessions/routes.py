"""HTTP routes of ``/api/sessions``: validate, call :data:`SESSIONS`, return wire models."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Body, Depends, Request, Response
from starlette.requests import HTTPConnection

from junction.auth.limits import LIMITS
from junction.auth.middleware import current_user
from junction.auth.ownership import may_access, method_action
from junction.errors import BadRequest, Conflict, Forbidden, NotFound
from junction.events import emit_event
from junction.eventschemas import KERNEL_ACTIONS, SESSION_EVENTS, kernel_action
from junction.plugin import use
from junction.plugins.contents.service import check_path
from junction.plugins.kernels.service import KERNELS
from junction.plugins.sessions.manager import StoredSessions
from junction.plugins.sessions.models import CreateSession, Session, UpdateSession
from junction.plugins.sessions.service import SESSIONS, SessionNotFound, SessionService
from junction.services import AUTH

__all__ = ["router"]


router = APIRouter(tags=["sessions"])

Sessions = Annotated[SessionService, use(SESSIONS)]

_NO_BODY = "No JSON data provided"


def _record(conn: HTTPConnection, session: Session) -> None:
    auth = conn.app.state.services.get(AUTH)
    user = current_user(conn.scope)
    auth.record_owner("sessions", session.id, user)
    auth.record_owner("kernels", session.kernel.id, user)


async def _owned(conn: HTTPConnection, session_id: str) -> None:
    """Another user's session looks missing (404)."""
    auth = conn.app.state.services.get(AUTH)
    if ("sessions", session_id) not in auth.owners:
        # Made before a restart or by another server: its owner is its kernel's.
        session = await conn.app.state.services.get(SESSIONS).get(session_id)
        auth.inherit_owner("sessions", session_id, "kernels", session.kernel.id)
    if not may_access(conn, "sessions", session_id, method_action(conn)):
        raise SessionNotFound(session_id)


Owned = [Depends(_owned)]


@router.get(
    "/api/sessions",
    responses={403: {"description": "Listing is off (sessions.list_sessions = false)"}},
)
async def list_sessions(conn: HTTPConnection, sessions: Sessions) -> list[Session]:
    """Every session whose kernel is running; 403 when ``sessions.list_sessions`` is off."""
    if isinstance(sessions, StoredSessions) and not sessions.listing:
        raise Forbidden(
            "Listing sessions is turned off on this server (sessions.list_sessions = false); "
            "ask for a session by its id"
        )
    auth = conn.app.state.services.get(AUTH)
    found = await sessions.list()
    for session in found:  # made before a restart or by another server: its kernel's owner
        auth.inherit_owner("sessions", session.id, "kernels", session.kernel.id)
    return [s for s in found if may_access(conn, "sessions", s.id, "read")]


@router.post(
    "/api/sessions",
    status_code=201,
    responses={400: {"description": "The kernel spec is not installed."}},
)
async def create_session(
    request: Request,
    response: Response,
    sessions: Sessions,
    body: Annotated[CreateSession | None, Body()] = None,
) -> Session:
    """Create a session for a document, or return the one it already has (unchanged)."""
    if body is None:
        raise BadRequest(_NO_BODY)
    if body.kernel.id is not None and not may_access(request, "kernels", body.kernel.id, "write"):
        raise NotFound(f"Kernel does not exist: {body.kernel.id}")
    await check_path(request, body.path, "read")  # multi-user mode: a path the user reaches
    limits = request.app.state.services.get_optional(LIMITS)
    kernels = request.app.state.services.get_optional(KERNELS)
    if body.kernel.id is None and limits is not None and kernels is not None:
        running = [k.id for k in await kernels.list()]
        limits.check("kernels", current_user(request.scope), running)
    session, created = await sessions.create(
        path=body.path,
        type=body.type,
        name=body.name,
        kernel_name=body.kernel.name,
        kernel_id=body.kernel.id,
    )
    if created:
        _record(request, session)
        event = {"action": "create", "session_id": session.id, "path": session.path}
        emit_event(request, SESSION_EVENTS, {**event, "kernel_id": session.kernel.id})
        if body.kernel.id is None:  # the session started its kernel
            emit_event(request, KERNEL_ACTIONS, kernel_action("start", session.kernel.id))
    elif not may_access(request, "sessions", session.id, "write"):
        raise Conflict(f"{body.path} has a session of another user")
    response.headers["Location"] = f"{request.url.path}/{session.id}"
    return session


@router.get("/api/sessions/{session_id}", dependencies=Owned)
async def get_session(session_id: str, sessions: Sessions) -> Session:
    """One session, with its kernel's live model."""
    return await sessions.get(session_id)


@router.patch(
    "/api/sessions/{session_id}",
    dependencies=Owned,
    responses={
        400: {"description": "The kernel spec is not installed."},
        501: {"description": "The new kernel could not be started."},
    },
)
async def update_session(
    conn: HTTPConnection,
    session_id: str,
    sessions: Sessions,
    body: Annotated[UpdateSession | None, Body()] = None,
) -> Session:
    """Rename or retype a session, or move it to another kernel (the old one is shut down)."""
    if body is None:
        raise BadRequest(_NO_BODY)
    if body.path is not None:
        await check_path(conn, body.path, "read")  # as at creation: a path the user reaches
    kernel = body.kernel
    if (
        kernel is not None
        and kernel.id is not None
        and not may_access(conn, "kernels", kernel.id, "write")
    ):
        raise NotFound(f"Kernel does not exist: {kernel.id}")
    session = await sessions.update(
        session_id,
        path=body.path,
        name=body.name,
        type=body.type,
        kernel_id=kernel.id if kernel is not None else None,
        kernel_name=kernel.name if kernel is not None else None,
    )
    _record(conn, session)
    return session


@router.delete("/api/sessions/{session_id}", status_code=204, dependencies=Owned)
async def delete_session(conn: HTTPConnection, session_id: str, sessions: Sessions) -> Response:
    """Delete a session and shut its kernel down (410 when the kernel was already gone)."""
    await sessions.delete(session_id)
    emit_event(conn, SESSION_EVENTS, {"action": "delete", "session_id": session_id})
    return Response(status_code=204)
