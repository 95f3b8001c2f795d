"""HTTP routes of ``/api/sessions``: validate, call :data:`SESSIONS`, return wire models."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Body, Request, Response

from junction.errors import BadRequest, Forbidden
from junction.plugin import use
from junction.plugins.sessions.manager import StoredSessions
from junction.plugins.sessions.models import CreateSession, Session, UpdateSession
from junction.plugins.sessions.service import SESSIONS, SessionService

__all__ = ["router"]


router = APIRouter(tags=["sessions"])

Sessions = Annotated[SessionService, use(SESSIONS)]

_NO_BODY = "No JSON data provided"


@router.get(
    "/api/sessions",
    responses={403: {"description": "Listing is off (sessions.list_sessions = false)"}},
)
async def list_sessions(sessions: Sessions) -> list[Session]:
    """Every session whose kernel is running; 403 when ``sessions.list_sessions`` is off."""
    if isinstance(sessions, StoredSessions) and not sessions.listing:
        raise Forbidden(
            "Listing sessions is turned off on this server (sessions.list_sessions = false); "
            "ask for a session by its id"
        )
    return await sessions.list()


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
    session, _created = await sessions.create(
        path=body.path,
        type=body.type,
        name=body.name,
        kernel_name=body.kernel.name,
        kernel_id=body.kernel.id,
    )
    response.headers["Location"] = f"{request.url.path}/{session.id}"
    return session


@router.get("/api/sessions/{session_id}")
async def get_session(session_id: str, sessions: Sessions) -> Session:
    """One session, with its kernel's live model."""
    return await sessions.get(session_id)


@router.patch(
    "/api/sessions/{session_id}",
    responses={
        400: {"description": "The kernel spec is not installed."},
        501: {"description": "The new kernel could not be started."},
    },
)
async def update_session(
    session_id: str,
    sessions: Sessions,
    body: Annotated[UpdateSession | None, Body()] = None,
) -> Session:
    """Rename or retype a session, or move it to another kernel (the old one is shut down)."""
    if body is None:
        raise BadRequest(_NO_BODY)
    kernel = body.kernel
    return await sessions.update(
        session_id,
        path=body.path,
        name=body.name,
        type=body.type,
        kernel_id=kernel.id if kernel is not None else None,
        kernel_name=kernel.name if kernel is not None else None,
    )


@router.delete("/api/sessions/{session_id}", status_code=204)
async def delete_session(session_id: str, sessions: Sessions) -> Response:
    """Delete a session and shut its kernel down (410 when the kernel was already gone)."""
    await sessions.delete(session_id)
    return Response(status_code=204)
