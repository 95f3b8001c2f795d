"""One client's WebSocket in a room: read frames into the room, write its outbox out."""

from __future__ import annotations

import logging

import anyio
from starlette.websockets import WebSocket, WebSocketDisconnect, WebSocketState

from junction.auth.identity import User
from junction.plugins.collaboration.room import Client, ClientClosed, Room

__all__ = ["MESSAGE_TOO_BIG", "serve_client"]

log = logging.getLogger("junction.collaboration")

MESSAGE_TOO_BIG = 1009
NOT_REACHED = 4404
"""Close code for a user who does not reach what the room holds (as for a missing room)."""


async def serve_client(
    websocket: WebSocket,
    room: Room,
    *,
    read_only: bool,
    max_message_size: int,
    user: User | None = None,
) -> None:
    """Run one accepted WebSocket of ``user`` in ``room`` until either side closes.

    Text frames, frames above ``max_message_size`` and malformed frames close this client
    only; the room and its other clients go on.
    """
    client = Client(read_only=read_only, user=user)
    if not await room.admit(client):
        client.outbox.close()
        client.inbox.close()
        with anyio.CancelScope(shield=True):
            await websocket.close(NOT_REACHED, f"no such room: {room.id}"[:120])
        return
    try:
        async with anyio.create_task_group() as group:
            group.start_soon(_read, websocket, room, client, max_message_size)
            await _write(websocket, client)
            group.cancel_scope.cancel()
    finally:
        room.leave(client)
        client.outbox.close()
        client.inbox.close()
        code, reason = client.closing or (1000, "")
        reason = reason.encode()[:120].decode(errors="ignore")  # RFC 6455: 123 bytes at most
        if websocket.application_state == WebSocketState.CONNECTED:
            try:
                with anyio.CancelScope(shield=True):
                    await websocket.close(code, reason)
            except (WebSocketDisconnect, RuntimeError, OSError):
                pass  # the peer is gone already


async def _read(websocket: WebSocket, room: Room, client: Client, max_size: int) -> None:
    while True:
        try:
            message = await websocket.receive()
        except WebSocketDisconnect:
            message = {"type": "websocket.disconnect"}
        if message["type"] == "websocket.disconnect":
            client.close(1000, "")
            return
        frame = message.get("bytes")
        if frame is None:
            client.close(1003, "binary frames only")
            return
        if len(frame) > max_size:
            client.close(MESSAGE_TOO_BIG, f"message above {max_size} bytes")
            return
        try:
            await room.handle(client, frame)
        except ClientClosed as exc:
            log.info("room %s: client disconnected: %s", room.id, exc.reason)
            client.close(exc.code, exc.reason)
            return


async def _write(websocket: WebSocket, client: Client) -> None:
    try:
        async for frame in client.inbox:
            await websocket.send_bytes(frame)
    except (WebSocketDisconnect, OSError, RuntimeError):  # the peer went away
        client.close(1001, "gone")
