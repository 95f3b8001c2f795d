"""HTTP and WebSocket routes of the terminals API: validate, call the service, return models."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Body, Depends, Response, WebSocket
from fastapi.responses import JSONResponse

from junction.errors import ServiceUnavailable
from junction.plugin import use
from junction.plugins.terminals.connection import serve_terminal
from junction.plugins.terminals.manager import PtyTerminals
from junction.plugins.terminals.models import Terminal, TerminalCreate
from junction.plugins.terminals.service import TERMINALS, TerminalNotFound, TerminalService

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


@router.get("/api/terminals")
async def list_terminals(terminals: Terminals) -> list[Terminal]:
    """Every running terminal."""
    return await terminals.list()


@router.post(
    "/api/terminals",
    responses={
        400: {"description": "Bad name, or cwd outside the root or not a directory"},
        409: {"description": "A terminal of this name runs already"},
        503: {"description": "The shell could not start"},
    },
)
async def create_terminal(
    terminals: Terminals, body: Annotated[TerminalCreate | None, Body()] = None
) -> Terminal:
    """Start a shell on a new PTY (200, as Jupyter answers); ``cwd`` defaults to the root."""
    request = body or TerminalCreate()
    return await terminals.create(name=request.name, cwd=request.cwd)


@router.get("/api/terminals/{name}", responses=_NOT_FOUND)
async def get_terminal(name: str, terminals: Terminals) -> Terminal:
    """One terminal's model."""
    return await terminals.get(name)


@router.delete("/api/terminals/{name}", status_code=204, responses=_NOT_FOUND)
async def delete_terminal(name: str, terminals: Terminals) -> Response:
    """Kill the terminal's shell and everything it started; its WebSockets get
    ``["disconnect", 1]`` and close."""
    await terminals.terminate(name)
    return Response(status_code=204)


@router.websocket("/terminals/websocket/{name}")
async def terminal_websocket(websocket: WebSocket, name: str, runtime: Runtime) -> None:
    """The terminal's input and output, in terminado's JSON protocol; 404 at the handshake
    for an unknown name."""
    try:
        terminal = runtime.terminal(name)
    except TerminalNotFound as exc:
        await websocket.send_denial_response(JSONResponse(exc.body(), status_code=exc.status_code))
        return
    await serve_terminal(websocket, terminal, max_message_size=runtime.max_message_size)
