"""One kernel WebSocket (``/api/kernels/{id}/channels``): its two loops and why it closes.

The protocol is chosen at the handshake: ``v1.kernel.websocket.jupyter.org`` when the client
offers it, else the JSON protocol (see :mod:`junction.plugins.kernels.wire`). A reader loop
parses client frames and hands them to the kernel's hub; a writer loop drains the client's
slot. Under uvicorn the hub also writes directly: each batch of kernel messages goes out as
one write through the connection's :class:`~junction.websocket_protocol.FrameWriter`, and
the writer loop only takes over while the socket's buffer is full (or without the frame
writer, under another ASGI server). Nothing is dropped silently: every server-initiated
close carries a code and a reason.

Close codes:

====  =============================================================================
1000  the kernel was shut down or culled; or a newer connection took this session_id
1001  the server is stopping, and the kernel with it
1003  a text frame on the binary v1 protocol
1007  a malformed message: not JSON, truncated or inconsistent frame, unknown channel
1009  a message larger than ``kernels.max_message_size``
1011  an unexpected server error
1012  the kernel lives on: kept through this server's stop, run by another server, or
      taken over by another one (this one was frozen); reconnect
1013  the client fell more than ``kernels.client_queue_bytes`` behind (may reconnect)
====  =============================================================================
"""

from __future__ import annotations

import contextlib
import logging
import uuid
from collections.abc import Iterable

import anyio
from starlette.websockets import WebSocket, WebSocketDisconnect

from junction.plugins.kernels.hub import KernelHub
from junction.plugins.kernels.metrics import WireStats
from junction.plugins.kernels.slots import ClientSlot
from junction.plugins.kernels.wire import (
    V1_SUBPROTOCOL,
    Message,
    ProtocolError,
    parse_json_binary,
    parse_json_text,
    parse_v1,
)
from junction.websocket_protocol import Frame, FrameWriter, frame_writer

__all__ = [
    "GOING_AWAY",
    "INTERNAL_ERROR",
    "MESSAGE_TOO_BIG",
    "NORMAL",
    "SERVICE_RESTART",
    "Connection",
    "serve_channels",
]

log = logging.getLogger("junction.kernels")

NORMAL = 1000
GOING_AWAY = 1001
MESSAGE_TOO_BIG = 1009
INTERNAL_ERROR = 1011
SERVICE_RESTART = 1012
_CLEAN_CLOSES = frozenset({NORMAL, GOING_AWAY})
_STOP_WAIT = 5.0
_WRITE_BATCH_BYTES = 256 * 1024
"""At most this much (plus one message) goes to the socket's buffer in one direct write."""
_PIECES_FROM = 1024 * 1024
"""v1 messages this large go out in their pieces, not joined into one frame first."""


class Connection:
    """One attached WebSocket; implements :class:`~junction.plugins.kernels.slots.SlotOwner`."""

    def __init__(
        self,
        websocket: WebSocket,
        hub: KernelHub,
        slot: ClientSlot,
        *,
        binary: bool,
        max_message_size: int,
        keep_for_reconnect: bool,
        stats: WireStats,
    ) -> None:
        self.websocket = websocket
        self.stats = stats
        self.hub = hub
        self.slot = slot
        self.binary = binary
        self.max_message_size = max_message_size
        self.keep_for_reconnect = keep_for_reconnect
        self._done = anyio.Event()
        self._stopped = anyio.Event()
        self._close: tuple[int, str] | None = None
        self._peer_code: int | None = None
        self._unclean = False
        self._frames: FrameWriter | None = frame_writer(websocket.scope)

    def close_soon(self, code: int, reason: str, *, unclean: bool = False) -> None:
        """Close with ``code`` and ``reason`` as soon as the loops stop; returns at once."""
        self._unclean = self._unclean or unclean
        if self._close is None and self._peer_code is None:
            self._close = (code, reason)
            if code != NORMAL:
                log.info(
                    "kernel %s: closing a WebSocket (%d): %s", self.hub.kernel_id, code, reason
                )
        self._done.set()

    async def wait_stopped(self) -> None:
        """Return once this connection no longer sends anything."""
        await self._stopped.wait()

    def write_now(self, messages: Iterable[Message]) -> int:
        """Write the first of ``messages`` in one go, if the socket takes them without
        waiting; returns how many (see :meth:`ClientSlot.flush`)."""
        writer = self._frames
        if writer is None or self._stopped.is_set() or not writer.writable:
            return 0
        binary = self.binary
        counts, sizes = self.stats.messages_out, self.stats.bytes_out
        frames: list[Frame] = []
        total = 0
        for message in messages:
            frame: Frame
            if not binary:
                frame = message.json_frame()
                size = len(frame)
            elif message.size < _PIECES_FROM:
                frame = message.v1_frame()
                size = len(frame)
            else:
                frame = message.v1_pieces()
                size = sum(map(len, frame))
            frames.append(frame)
            counts[message.channel] += 1
            sizes[message.channel] += size
            total += size
            if total >= _WRITE_BATCH_BYTES:
                break
        try:
            writer.write(frames)
        except ConnectionError:
            self._peer_code = self._peer_code or 1006
            self._done.set()
            return 0
        return len(frames)

    async def run(self) -> None:
        """Serve the socket until either side closes it."""
        previous = self.slot.owner
        if previous is not None:
            previous.close_soon(
                NORMAL, "replaced by a newer connection with the same session_id", unclean=True
            )
            with anyio.move_on_after(_STOP_WAIT):
                await previous.wait_stopped()
        self.hub.attach(self.slot, self)
        try:
            await self.hub.nudge()
            async with anyio.create_task_group() as group:
                group.start_soon(self._write)
                group.start_soon(self._read)
                await self._done.wait()
                group.cancel_scope.cancel()
        finally:
            self._stopped.set()
            keep = self.keep_for_reconnect and self._peer_code not in _CLEAN_CLOSES
            # A close the server started after sending everything proves delivery once the
            # client reads up to the close frame; any other ending does not.
            unclean = self._unclean or self._peer_code is not None or self._close is None
            self.hub.detach(self.slot, self, keep=keep, unclean=unclean)
        if self._close is not None and self._peer_code is None:
            code, reason = self._close
            with anyio.move_on_after(_STOP_WAIT, shield=True):
                with contextlib.suppress(WebSocketDisconnect, OSError, RuntimeError):
                    await self.websocket.close(code, _truncate(reason))

    async def _read(self) -> None:
        receive = self.websocket.receive
        limit = self.max_message_size
        messages, sizes = self.stats.messages_in, self.stats.bytes_in
        try:
            while True:
                event = await receive()
                if event["type"] == "websocket.disconnect":
                    self._peer_code = int(event.get("code", 1005))
                    break
                data: bytes | None = event.get("bytes")
                text: str | None = event.get("text")
                size = len(data) if data is not None else _text_size(text or "", limit)
                if size > limit:
                    self.close_soon(
                        MESSAGE_TOO_BIG,
                        f"message of {size} bytes exceeds the limit of {limit} bytes "
                        "(kernels.max_message_size)",
                    )
                    break
                try:
                    message = self._parse(data, text)
                except ProtocolError as exc:
                    self.close_soon(exc.code, f"invalid kernel message: {exc}")
                    break
                messages[message.channel] += 1
                sizes[message.channel] += size
                await self.hub.send(self.slot, message)
        except (WebSocketDisconnect, OSError):
            self._peer_code = self._peer_code or 1006
        except Exception:
            log.exception("kernel %s: WebSocket reader failed", self.hub.kernel_id)
            self.close_soon(INTERNAL_ERROR, "internal server error; see the server log")
        self._done.set()

    def _parse(self, data: bytes | None, text: str | None) -> Message:
        if self.binary:
            if data is None:
                raise ProtocolError(f"{V1_SUBPROTOCOL} expects binary frames", code=1003)
            return parse_v1(data)
        if data is not None:
            return parse_json_binary(data)
        return parse_json_text(text or "")

    async def _write(self) -> None:
        if self._frames is not None:
            await self._write_frames(self._frames)
            return
        send = self.websocket.send
        slot = self.slot
        messages, sizes = self.stats.messages_out, self.stats.bytes_out
        try:
            while True:
                message = await slot.wait_message(self)
                if message is None:
                    break
                frame: bytes | str
                if self.binary:
                    frame = message.v1_frame()
                    await send({"type": "websocket.send", "bytes": frame})
                else:
                    frame = message.json_frame()
                    if isinstance(frame, str):
                        await send({"type": "websocket.send", "text": frame})
                    else:
                        await send({"type": "websocket.send", "bytes": frame})
                slot.sent(message)
                messages[message.channel] += 1
                sizes[message.channel] += len(frame)
        except (WebSocketDisconnect, OSError, RuntimeError):
            self._peer_code = self._peer_code or 1006
        finally:
            self._stopped.set()
            self._done.set()

    async def _write_frames(self, writer: FrameWriter) -> None:
        """The writer loop with a frame writer: write whatever waits, in batches; wait for
        the socket's buffer to drain when it is full."""
        slot = self.slot
        try:
            while await slot.wait_message(self) is not None:
                if writer.closed:
                    self._peer_code = self._peer_code or 1006
                    break
                if not writer.writable:
                    await writer.wait_writable()
                    continue
                slot.hand_over()
                if self._done.is_set():
                    break
        finally:
            self._stopped.set()
            self._done.set()


async def serve_channels(
    websocket: WebSocket,
    hub: KernelHub,
    *,
    session_id: str | None,
    max_message_size: int,
    keep_for_reconnect: bool,
    stats: WireStats,
) -> None:
    """Accept a kernel WebSocket (v1 when offered) and serve it until it closes."""
    binary = V1_SUBPROTOCOL in websocket.scope.get("subprotocols", ())
    await websocket.accept(subprotocol=V1_SUBPROTOCOL if binary else None)
    slot = hub.slot(session_id or uuid.uuid4().hex)
    connection = Connection(
        websocket,
        hub,
        slot,
        binary=binary,
        max_message_size=max_message_size,
        keep_for_reconnect=keep_for_reconnect,
        stats=stats,
    )
    await connection.run()


def _text_size(text: str, limit: int) -> int:
    """Size in bytes of a text frame; exact only when the character count could exceed."""
    return len(text.encode()) if 4 * len(text) > limit else len(text)


def _truncate(reason: str) -> str:
    """A close reason fits in 123 bytes of UTF-8 (RFC 6455 §5.5)."""
    encoded = reason.encode()
    if len(encoded) <= 123:
        return reason
    return encoded[:120].decode(errors="ignore") + "..."
