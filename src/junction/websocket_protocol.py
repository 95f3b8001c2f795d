"""uvicorn's WebSocket protocol, plus synchronous frame writes for hot senders.

An ASGI ``send`` is a coroutine, and a sender that forwards a stream of small messages (a
kernel's output) pays for it per message: a task wakes up for each one, and each one is a
separate ``write`` system call. :class:`FrameWriterProtocol` is uvicorn's own protocol
(``websockets`` sans-I/O) that also puts a :class:`FrameWriter` in the connection scope's
``extensions`` under :data:`FRAME_WRITER`. With it, code already running on the event loop
writes any number of frames in one go, without awaiting: they are framed by the same
``websockets`` protocol object uvicorn uses (so its state, close handshake and limits hold)
and handed to the transport in one ``write``.

The writer never waits. When the transport's buffer is above its high-water mark it reports
itself not writable; the sender keeps its messages and awaits :meth:`FrameWriter.wait_writable`
(uvicorn's own flow control event). Accepting and closing go through ASGI as usual. Senders
find the writer with :func:`frame_writer` and fall back to ASGI ``send`` when it is absent
(another ASGI server, an in-process test client).

Data frames from a server are simple (RFC 6455 §5.2: no mask; a two to ten byte header), so
while the connection is open and no extension was negotiated (Junction never enables
``permessage-deflate``) the writer frames them itself and hands the transport the header and
the payload's pieces as they are: a 50 MB kernel output is not copied on its way out. With an
extension, or once closing has begun, it goes through ``websockets`` instead.
"""

from __future__ import annotations

import struct
from collections.abc import Iterable, Sequence
from typing import Any

from uvicorn.protocols.websockets.websockets_sansio_impl import WebSocketsSansIOProtocol
from websockets.exceptions import InvalidState
from websockets.protocol import State

__all__ = ["FRAME_WRITER", "Frame", "FrameWriter", "FrameWriterProtocol", "frame_writer"]

Frame = bytes | str | Sequence[bytes | memoryview]
"""One WebSocket message: binary (``bytes``), text (``str``), or binary in pieces (a sequence
of buffers, sent one after the other as one message)."""

_BINARY, _TEXT = 0x82, 0x81  # FIN set, opcode 2 or 1
_SHORT, _MEDIUM, _LONG = struct.Struct("!BB"), struct.Struct("!BBH"), struct.Struct("!BBQ")


def _header(opcode: int, size: int) -> bytes:
    """The header of an unmasked, unfragmented data frame of ``size`` payload bytes."""
    if size < 126:
        return _SHORT.pack(opcode, size)
    if size < 1 << 16:
        return _MEDIUM.pack(opcode, 126, size)
    return _LONG.pack(opcode, 127, size)


FRAME_WRITER = "junction.websocket.frame_writer"
"""The key of the extension in ``scope["extensions"]``; its value is ``{"writer": FrameWriter}``."""


class FrameWriter:
    """Writes WebSocket data frames of one connection synchronously."""

    __slots__ = ("_protocol",)

    def __init__(self, protocol: WebSocketsSansIOProtocol) -> None:
        self._protocol = protocol

    @property
    def closed(self) -> bool:
        """Whether no frame can be written any more (closing, closed or lost)."""
        protocol = self._protocol
        return protocol.disconnected or protocol.close_sent or protocol.transport.is_closing()

    @property
    def writable(self) -> bool:
        """Whether frames may be written now: open, and the transport's buffer not full."""
        return self._protocol.writable.is_set() and not self.closed

    async def wait_writable(self) -> None:
        """Return once the transport's buffer has drained below its low-water mark (or the
        connection is lost)."""
        await self._protocol.writable.wait()

    def write(self, frames: Iterable[Frame]) -> None:
        """Frame each message and write them all at once.

        Raises :class:`ConnectionError` when the connection is closing or closed.
        """
        protocol = self._protocol
        if self.closed:
            raise ConnectionError("the WebSocket is closed")
        conn = protocol.conn
        if conn.state is State.OPEN and not conn.extensions:
            protocol.transport.writelines(_framed(frames))
            return
        try:
            for frame in frames:
                if isinstance(frame, str):
                    conn.send_text(frame.encode())
                else:
                    conn.send_binary(frame if isinstance(frame, bytes) else b"".join(frame))
        except InvalidState as exc:  # the peer started the closing handshake
            raise ConnectionError(str(exc)) from None
        finally:
            output = conn.data_to_send()
            if output:
                protocol.transport.write(b"".join(output))


def _framed(frames: Iterable[Frame]) -> list[bytes | memoryview]:
    """Headers and payloads of ``frames`` as unmasked data frames, in order."""
    out: list[bytes | memoryview] = []
    for frame in frames:
        if isinstance(frame, bytes):
            out += (_header(_BINARY, len(frame)), frame)
        elif isinstance(frame, str):
            payload = frame.encode()
            out += (_header(_TEXT, len(payload)), payload)
        else:
            out.append(_header(_BINARY, sum(map(len, frame))))
            out += frame
    return out


class FrameWriterProtocol(WebSocketsSansIOProtocol):
    """uvicorn's ``websockets`` sans-I/O protocol, offering a :class:`FrameWriter`.

    It also sends a close frame without waiting for the transport's buffer to drain: a
    server closes a client that stopped reading precisely because it stopped reading, and
    the close code (1013: too slow) must reach it once it reads again, not give way to a
    dropped connection when the wait times out.
    """

    async def send(self, message: Any) -> None:
        """ASGI ``send``; a ``websocket.close`` on an open connection never waits."""
        if message.get("type") == "websocket.close" and self.handshake_complete:
            self.writable.set()  # nothing is written after the close frame
        await super().send(message)

    def handle_connect(self, event: Any) -> None:
        """Handle the opening handshake; the scope gains the frame writer extension."""
        super().handle_connect(event)
        scope = getattr(self, "scope", None)  # absent when the handshake was refused
        if scope is not None:
            scope["extensions"][FRAME_WRITER] = {"writer": FrameWriter(self)}


def frame_writer(scope: Any) -> FrameWriter | None:
    """The frame writer of a WebSocket connection's ``scope``, if its server offers one."""
    extension = (scope.get("extensions") or {}).get(FRAME_WRITER)
    writer = extension.get("writer") if isinstance(extension, dict) else None
    return writer if isinstance(writer, FrameWriter) else None
