"""One terminal WebSocket (``/terminals/websocket/{name}``): terminado's JSON protocol.

Every frame is a text frame holding a JSON array whose first item names the message:

- server to client: ``["setup", {}]`` first, then ``["stdout", text]`` (the scrollback
  first, when there is any), and ``["disconnect", 1]`` when the terminal ends;
- client to server: ``["stdin", text]`` and ``["set_size", rows, cols, ...]`` (pixel sizes
  after ``cols`` are ignored); other message names are ignored, as terminado does.

A reader loop parses client frames; a writer loop drains the client's outbox. A bad frame
closes this socket only: the terminal and its other clients go on.

Close codes:

====  =============================================================================
1000  the terminal ended (after ``["disconnect", 1]``)
1003  a binary frame
1007  a malformed frame: not JSON, not an array starting with a string, bad arguments
1009  a frame larger than ``terminals.max_message_size`` (or ``websocket_max_message_size``)
1011  an unexpected server error
1013  the client fell too far behind the output, or sent input faster than the shell reads
      (more than 1 MiB waiting, this frame included)
====  =============================================================================
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Mapping
from typing import Any

import anyio
import orjson
from starlette.websockets import WebSocket, WebSocketDisconnect

from junction.plugins.terminals.terminal import SLOW_CLIENT, PtyTerminal, TerminalClient

__all__ = ["serve_terminal"]

log = logging.getLogger("junction.terminals")

NORMAL = 1000
UNSUPPORTED_DATA = 1003
INVALID_DATA = 1007
MESSAGE_TOO_BIG = 1009
INTERNAL_ERROR = 1011
_CLOSE_WAIT = 2.0


class _BadFrame(Exception):
    def __init__(self, code: int, reason: str) -> None:
        super().__init__(reason)
        self.code = code
        self.reason = reason


async def serve_terminal(
    websocket: WebSocket, terminal: PtyTerminal, *, max_message_size: int
) -> None:
    """Accept the socket, attach it to ``terminal`` and serve it until either side closes."""
    client = terminal.attach()  # before the handshake answer: output from now on is kept
    peer_closed = False
    try:
        await websocket.accept()
        async with anyio.create_task_group() as group:
            client.on_close = group.cancel_scope.cancel

            async def read() -> None:
                nonlocal peer_closed
                peer_closed = await _read(websocket, terminal, client, max_message_size)
                group.cancel_scope.cancel()

            group.start_soon(read)
            await _write(websocket, terminal, client)
            group.cancel_scope.cancel()
    finally:
        client.on_close = None
        terminal.detach(client)
    if client.close is not None and not peer_closed:
        code, reason = client.close
        if code != NORMAL:
            log.info("terminal %s: closing a WebSocket (%d): %s", terminal.name, code, reason)
        # A client too slow to take its output may not take the close frame either.
        with (
            anyio.move_on_after(_CLOSE_WAIT),
            contextlib.suppress(WebSocketDisconnect, OSError, RuntimeError),
        ):
            await websocket.close(code, reason[:120])


async def _read(
    websocket: WebSocket, terminal: PtyTerminal, client: TerminalClient, max_size: int
) -> bool:
    """Read client frames until the peer closes (True) or a frame is refused (False)."""
    try:
        while True:
            event = await websocket.receive()
            if event["type"] == "websocket.disconnect":
                return True
            try:
                _handle(terminal, client, event, max_size)
            except _BadFrame as exc:
                client.close_soon(exc.code, exc.reason)
                return False
    except (WebSocketDisconnect, OSError):
        return True
    except Exception:
        log.exception("terminal %s: WebSocket reader failed", terminal.name)
        client.close_soon(INTERNAL_ERROR, "internal server error; see the server log")
        return False


def _handle(
    terminal: PtyTerminal, client: TerminalClient, event: Mapping[str, Any], max_size: int
) -> None:
    text = event.get("text")
    if text is None:
        raise _BadFrame(UNSUPPORTED_DATA, "binary frames are not part of the terminal protocol")
    if len(text) > max_size:
        raise _BadFrame(
            MESSAGE_TOO_BIG,
            f"message larger than {max_size} characters (terminals.max_message_size)",
        )
    try:
        message = orjson.loads(text)
    except ValueError:
        raise _BadFrame(INVALID_DATA, "frame is not JSON") from None
    if not isinstance(message, list) or not message or not isinstance(message[0], str):
        raise _BadFrame(INVALID_DATA, "frame is not a JSON array starting with a message name")
    kind = message[0]
    if kind == "stdin":
        if len(message) < 2 or not isinstance(message[1], str):
            raise _BadFrame(INVALID_DATA, "stdin takes one string")
        if not terminal.write(message[1]):
            raise _BadFrame(SLOW_CLIENT, "input arrives faster than the terminal reads it")
    elif kind == "set_size":
        sizes = message[1:3]
        if len(sizes) < 2 or not all(type(n) is int for n in sizes):
            raise _BadFrame(INVALID_DATA, "set_size takes integer rows and columns")
        terminal.resize(client, sizes[0], sizes[1])
        terminal.last_activity_now()


async def _write(websocket: WebSocket, terminal: PtyTerminal, client: TerminalClient) -> None:
    """Send ``setup``, then output as it comes, then ``disconnect`` when the terminal ends."""
    send = websocket.send
    try:
        await send({"type": "websocket.send", "text": '["setup", {}]'})
        while True:
            text = await client.next_frame()
            if text is None:
                break
            await send({"type": "websocket.send", "text": orjson.dumps(["stdout", text]).decode()})
            terminal.sent(client, len(text))
        if client.close is None:
            await send({"type": "websocket.send", "text": '["disconnect", 1]'})
            client.close_soon(NORMAL, "the terminal ended")
    except (WebSocketDisconnect, OSError, RuntimeError):
        pass
