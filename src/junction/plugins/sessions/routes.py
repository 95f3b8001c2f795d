"""HTTP routes of ``/api/sessions``: validate, call :data:`SESSIONS`, return wire models."""

from __future__ import annotations

from collections.abc import Callable, Coroutine
from typing import Annotated, Any

from fastapi import APIRouter, Body, Request, Response
from fastapi.responses import JSONResponse
from fastapi.routing import APIRoute

from junction.errors import BadRequest
from junction.plugin import use
from junction.plugins.sessions.models import CreateSession, Session, UpdateSession
from junction.plugins.sessions.service import SESSIONS, KernelUnavailable, SessionService

__all__ = ["router"]


class SessionsRoute(APIRoute):
    """The sessions routes' wire quirks, in one place.

    - Bodies are JSON whatever their ``Content-Type`` says. JupyterLab posts
      ``JSON.stringify(...)`` strings, which ``fetch`` labels ``text/plain;charset=UTF-8``,
      and FastAPI parses only JSON-typed bodies. Reading them as JSON is safe: a
      cookie-authenticated unsafe request must also carry ``X-XSRFToken`` (the core checks it
      before any route runs), which a cross-site form or a simple ``fetch`` cannot set.
    - :class:`KernelUnavailable` (501) gets a ``short_message`` beside ``message``, as Jupyter
      clients expect when a session's kernel cannot be had (wire contract §5); every other
      error keeps the core's ``{"message", "reason"}``.
    """

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        """Wrap FastAPI's handler with the two adjustments above."""
        handler = super().get_route_handler()

        async def handle(request: Request) -> Response:
            try:
                return await handler(_as_json(request))
            except KernelUnavailable as exc:
                body = {
                    "message": exc.message,
                    "reason": exc.reason,
                    "short_message": exc.short_message,
                }
                return JSONResponse(body, status_code=exc.status_code)

        return handle


def _as_json(request: Request) -> Request:
    """The same request, its body labelled ``application/json`` when it says otherwise."""
    content_type = request.headers.get("content-type", "")
    if content_type.startswith("application/json") or request.method in ("GET", "HEAD"):
        return request
    headers = [(k, v) for k, v in request.scope["headers"] if k != b"content-type"]
    headers.append((b"content-type", b"application/json"))
    return Request({**request.scope, "headers": headers}, request.receive)


router = APIRouter(tags=["sessions"], route_class=SessionsRoute)

Sessions = Annotated[SessionService, use(SESSIONS)]

_NO_BODY = "No JSON data provided"


@router.get("/api/sessions")
async def list_sessions(sessions: Sessions) -> list[Session]:
    """Every session whose kernel is running."""
    return await sessions.list()


@router.post(
    "/api/sessions",
    status_code=201,
    responses={501: {"description": "The kernel spec is not installed."}},
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
    responses={501: {"description": "The new kernel could not be started."}},
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
