"""HTTP and WebSocket routes of the terminals API: validate, call the service, return models."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Body, Depends, Response, WebSocket
from fastapi.responses import JSONResponse
from starlette.requests import HTTPConnection

from junction.auth.limits import LIMITS
from junction.auth.middleware import current_user
from junction.auth.ownership import may_access, method_action
from junction.errors import ServiceUnavailable
from junction.events import emit_event
from junction.eventschemas import TERMINAL_EVENTS
from junction.plugin import use
from junction.plugins.contents.service import check_path, home_of
from junction.plugins.terminals.connection import serve_terminal
from junction.plugins.terminals.manager import PtyTerminals
from junction.plugins.terminals.models import Terminal, TerminalCreate
from junction.plugins.terminals.service import TERMINALS, TerminalNotFound, TerminalService
from junction.services import AUTH

__all__ = ["router"]

router = APIRouter(tags=["terminals"])

Terminals = Annotated[TerminalService, use(TERMINALS)]


async def _runtime(terminals: Terminals) -> PtyTerminals:  # async: no worker thread
    """The terminals plugin's own implementation, which its WebSocket is written for."""
    if not isinstance(terminals, PtyTerminals):
        raise ServiceUnavailable("the terminals routes need the terminals plugin's own service")
    return terminals


Runtime = Annotated[PtyTerminals, Depends(_runtime)]

_NOT_FOUND: dict[int | str, dict[str, Any]] = {404: {"description": "No such terminal"}}


async def _owned(conn: HTTPConnection, name: str) -> None:
    """Another user's terminal looks missing (404)."""
    if not may_access(conn, "terminals", name, method_action(conn)):
        raise TerminalNotFound(name)


Owned = [Depends(_owned)]


@router.get("/api/terminals")
async def list_terminals(conn: HTTPConnection, terminals: Terminals) -> list[Terminal]:
    """Every running terminal the caller may see."""
    return [t for t in await terminals.list() if may_access(conn, "terminals", t.name, "read")]


@router.post(
    "/api/terminals",
    responses={
        400: {"description": "Bad name, or cwd outside the root or not a directory"},
        409: {"description": "A terminal of this name runs already"},
        503: {"description": "The shell could not start"},
    },
)
async def create_terminal(
    conn: HTTPConnection,
    terminals: Terminals,
    body: Annotated[TerminalCreate | None, Body()] = None,
) -> Terminal:
    """Start a shell on a new PTY (200, as Jupyter answers); ``cwd`` defaults to the root."""
    request = body or TerminalCreate()
    cwd = request.cwd
    if cwd is None:
        cwd = home_of(conn)  # multi-user mode: a user's shell starts in their home
    if cwd is not None:
        await check_path(conn, cwd, "read")
    limits = conn.app.state.services.get_optional(LIMITS)
    if limits is not None:
        running = [t.name for t in await terminals.list()]
        limits.check("terminals", current_user(conn.scope), running)
    terminal = await terminals.create(name=request.name, cwd=cwd)
    conn.app.state.services.get(AUTH).record_owner(
        "terminals", terminal.name, current_user(conn.scope)
    )
    emit_event(conn, TERMINAL_EVENTS, {"action": "create", "name": terminal.name})
    return terminal


@router.get("/api/terminals/{name}", responses=_NOT_FOUND, dependencies=Owned)
async def get_terminal(name: str, terminals: Terminals) -> Terminal:
    """One terminal's model."""
    return await terminals.get(name)


@router.delete("/api/terminals/{name}", status_code=204, responses=_NOT_FOUND, dependencies=Owned)
async def delete_terminal(conn: HTTPConnection, name: str, terminals: Terminals) -> Response:
    """Kill the terminal's shell and everything it started; its WebSockets get
    ``["disconnect", 1]`` and close."""
    await terminals.terminate(name)
    conn.app.state.services.get(AUTH).forget_owner("terminals", name)
    emit_event(conn, TERMINAL_EVENTS, {"action": "delete", "name": name})
    return Response(status_code=204)


@router.websocket("/terminals/websocket/{name}")
async def terminal_websocket(websocket: WebSocket, name: str, runtime: Runtime) -> None:
    """The terminal's input and output, in terminado's JSON protocol; 404 at the handshake
    for an unknown name."""
    try:
        if not may_access(websocket, "terminals", name, "execute"):
            raise TerminalNotFound(name)
        terminal = runtime.terminal(name)
    except TerminalNotFound as exc:
        await websocket.send_denial_response(JSONResponse(exc.body(), status_code=exc.status_code))
        return
    await serve_terminal(websocket, terminal, max_message_size=runtime.max_message_size)
