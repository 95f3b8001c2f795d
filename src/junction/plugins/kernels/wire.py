"""Kernel messages on both wires: ZeroMQ multipart messages and WebSocket frames.

A :class:`Message` keeps the four JSON parts (header, parent header, metadata, content) as
the raw bytes its sender wrote, followed by any binary buffers. Only the header is decoded
(routing needs ``msg_id`` and ``msg_type``); the parent header is decoded on demand for
replies and status messages. Content, metadata and buffers are never decoded: they are copied
verbatim between ZeroMQ and the WebSocket.

ZeroMQ (Jupyter messaging spec)::

    [identities..., b"<IDS|MSG>", hmac hexdigest, header, parent, metadata, content, buffers...]

WebSocket, ``v1.kernel.websocket.jupyter.org`` (always binary; integers are u64 little
endian)::

    offset_count | offset_0 ... offset_{count-1} | channel | header | parent | metadata |
    content | buffers...

where ``offset_0`` is where the channel starts and the last offset is the frame's length.

WebSocket, the JSON protocol (no subprotocol): a text frame holding one JSON object
``{"channel", "header", "parent_header", "metadata", "content", "buffers": [], "msg_id",
"msg_type"}``; a message with buffers is a binary frame instead: u32 big-endian count
(1 + buffers), that many u32 offsets (JSON first), the JSON object without ``buffers``, then
the buffers.
"""

from __future__ import annotations

import hashlib
import hmac
import itertools
import struct
import uuid
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

import orjson

__all__ = [
    "CLIENT_CHANNELS",
    "DELIMITER",
    "PROTOCOL_VERSION",
    "V1_SUBPROTOCOL",
    "Message",
    "Part",
    "ProtocolError",
    "Signer",
    "from_zmq",
    "make_message",
    "parse_json_binary",
    "parse_json_text",
    "parse_v1",
    "to_zmq",
]

DELIMITER = b"<IDS|MSG>"
V1_SUBPROTOCOL = "v1.kernel.websocket.jupyter.org"
CLIENT_CHANNELS = frozenset({"shell", "control", "stdin"})
PROTOCOL_VERSION = "5.4"

Part = bytes | memoryview
"""One part of a message: bytes from ZeroMQ, or a zero-copy slice of a WebSocket frame."""

_OVERHEAD = 256
"""Bytes charged per message on top of its parts when bounding queues (object overhead)."""


class ProtocolError(ValueError):
    """A client frame breaks the kernel WebSocket protocol; the socket is closed with
    ``code`` (1003 wrong frame type, 1007 malformed message) and the message as reason."""

    def __init__(self, message: str, *, code: int = 1007) -> None:
        super().__init__(message)
        self.code = code


class Message:
    """One kernel message, as raw parts, with its channel and decoded header.

    Encodings for the WebSocket are built once and cached, so a message sent to many clients
    is encoded once per protocol.
    """

    __slots__ = ("_json", "_parent", "_v1", "channel", "header", "parts", "size")

    def __init__(self, channel: str, parts: list[Part], header: dict[str, Any]) -> None:
        self.channel = channel
        self.parts = parts
        self.header = header
        self.size = sum(map(len, parts)) + _OVERHEAD
        self._parent: dict[str, Any] | None = None
        self._v1: bytes | None = None
        self._json: str | bytes | None = None

    @property
    def msg_id(self) -> str:
        """The header's ``msg_id``."""
        return str(self.header.get("msg_id", ""))

    @property
    def msg_type(self) -> str:
        """The header's ``msg_type``."""
        return str(self.header.get("msg_type", ""))

    @property
    def parent(self) -> dict[str, Any]:
        """The decoded parent header (``{}`` when absent or not a JSON object)."""
        if self._parent is None:
            try:
                parent = orjson.loads(self.parts[1])
            except orjson.JSONDecodeError:
                parent = {}
            self._parent = parent if isinstance(parent, dict) else {}
        return self._parent

    def content(self) -> Any:
        """Decode the content; only for the few messages the server itself reads."""
        return orjson.loads(self.parts[3])

    def v1_frame(self) -> bytes:
        """This message as a ``v1.kernel.websocket.jupyter.org`` frame."""
        if self._v1 is None:
            self._v1 = b"".join(self.v1_pieces())
        return self._v1

    def v1_pieces(self) -> list[Part]:
        """:meth:`v1_frame` as the pieces it joins: the offset table, the channel and the
        parts themselves (for a large message, which is then never copied whole)."""
        channel = self.channel.encode()
        count = len(self.parts) + 2
        position = 8 * (count + 1)
        offsets = [position]
        position += len(channel)
        offsets.append(position)
        for part in self.parts:
            position += len(part)
            offsets.append(position)
        return [struct.pack(f"<{count + 1}Q", count, *offsets), channel, *self.parts]

    def json_frame(self) -> str | bytes:
        """This message for the JSON protocol: text, or binary when it carries buffers."""
        if self._json is None:
            header, parent, metadata, content = self.parts[:4]
            buffers = self.parts[4:]
            pieces: list[Part] = [
                b'{"channel":"',
                self.channel.encode(),
                b'","header":',
                header,
                b',"parent_header":',
                parent or b"{}",
                b',"metadata":',
                metadata or b"{}",
                b',"content":',
                content or b"{}",
            ]
            if not buffers:
                pieces.append(b',"buffers":[]')
            pieces += [
                b',"msg_id":',
                orjson.dumps(self.msg_id),
                b',"msg_type":',
                orjson.dumps(self.msg_type),
                b"}",
            ]
            body = b"".join(pieces)
            if not buffers:
                self._json = body.decode("utf-8", errors="replace")
            else:
                count = 1 + len(buffers)
                position = 4 * (count + 1)
                offsets = [position]
                position += len(body)
                for buffer in buffers[:-1]:
                    offsets.append(position)
                    position += len(buffer)
                offsets.append(position)
                head = struct.pack(f">{count + 1}I", count, *offsets)
                self._json = b"".join([head, body, *buffers])
        return self._json


class Signer:
    """Signs and checks messages with a kernel's key (HMAC over the four JSON parts).

    An empty key means the kernel does not check signatures; the signature is then empty.
    """

    def __init__(self, key: bytes, scheme: str = "hmac-sha256") -> None:
        self._mac: hmac.HMAC | None = None
        if key:
            kind, _, algorithm = scheme.partition("-")
            if kind != "hmac" or algorithm not in hashlib.algorithms_available:
                raise ValueError(f"unsupported signature scheme {scheme!r}")
            self._mac = hmac.new(key, digestmod=algorithm)

    def sign(self, parts: Sequence[Part]) -> bytes:
        """The hex signature of a message's header, parent, metadata and content."""
        if self._mac is None:
            return b""
        mac = self._mac.copy()
        for part in parts[:4]:
            mac.update(part)
        return mac.hexdigest().encode()

    def verify(self, signature: Part, parts: Sequence[Part]) -> bool:
        """Whether ``signature`` is this key's signature of ``parts``."""
        if self._mac is None:
            return True
        return hmac.compare_digest(signature, self.sign(parts))


def from_zmq(channel: str, frames: Sequence[Part], signer: Signer) -> Message:
    """Read a multipart message a kernel sent; raises ValueError if malformed or forged."""
    try:
        start = frames.index(DELIMITER)
    except ValueError:
        raise ValueError("no <IDS|MSG> delimiter") from None
    parts: list[Part] = list(frames[start + 2 :])
    if len(parts) < 4:
        raise ValueError(f"{len(parts)} message parts, expected at least 4")
    if not signer.verify(frames[start + 1], parts):
        raise ValueError("bad signature")
    header = orjson.loads(parts[0])
    if not isinstance(header, dict):
        raise ValueError("header is not a JSON object")
    return Message(channel, parts, header)


def to_zmq(message: Message, signer: Signer) -> list[Part]:
    """The multipart message to send ``message`` to a kernel, signed with its key."""
    return [DELIMITER, signer.sign(message.parts), *message.parts]


def _client_header(raw: Part | Any, *, decoded: bool = False) -> dict[str, Any]:
    if decoded:
        header = raw
    else:
        try:
            header = orjson.loads(raw)
        except orjson.JSONDecodeError:
            raise ProtocolError("message header is not valid JSON") from None
    if (
        not isinstance(header, dict)
        or not isinstance(header.get("msg_id"), str)
        or not isinstance(header.get("msg_type"), str)
    ):
        raise ProtocolError("message header must be a JSON object with msg_id and msg_type")
    return header


def _check_channel(channel: Any) -> str:
    if channel not in CLIENT_CHANNELS:
        raise ProtocolError(f"unknown channel {channel!r}; clients send on shell, control, stdin")
    return str(channel)


def parse_v1(frame: bytes) -> Message:
    """Read a client's ``v1.kernel.websocket.jupyter.org`` frame; raises ProtocolError."""
    size = len(frame)
    if size < 8:
        raise ProtocolError(f"truncated v1 frame: {size} bytes")
    count = int.from_bytes(frame[:8], "little")
    if count < 6 or 8 * (count + 1) > size:
        raise ProtocolError(f"malformed v1 frame: {count} offsets in {size} bytes")
    offsets = struct.unpack_from(f"<{count}Q", frame, 8)
    if offsets[0] != 8 * (count + 1) or offsets[-1] != size:
        raise ProtocolError(
            f"malformed v1 frame: offsets span {offsets[0]}..{offsets[-1]}, frame has {size} bytes"
        )
    if any(later < earlier for earlier, later in itertools.pairwise(offsets)):
        raise ProtocolError("malformed v1 frame: offsets decrease")
    view = memoryview(frame)
    try:
        channel_name = bytes(view[offsets[0] : offsets[1]]).decode()
    except UnicodeDecodeError:
        raise ProtocolError("v1 frame channel is not UTF-8") from None
    channel = _check_channel(channel_name)
    parts: list[Part] = [view[offsets[i] : offsets[i + 1]] for i in range(1, count - 1)]
    return Message(channel, parts, _client_header(parts[0]))


def _from_json_object(value: Any, buffers: list[Part]) -> Message:
    if not isinstance(value, dict):
        raise ProtocolError("message is not a JSON object")
    channel = _check_channel(value.get("channel"))
    header = _client_header(value.get("header"), decoded=True)
    parts: list[Part] = [
        orjson.dumps(header),
        orjson.dumps(value.get("parent_header") or {}),
        orjson.dumps(value.get("metadata") or {}),
        orjson.dumps(value.get("content") or {}),
        *buffers,
    ]
    return Message(channel, parts, header)


def parse_json_text(text: str) -> Message:
    """Read a client's JSON-protocol text frame; raises ProtocolError."""
    try:
        value = orjson.loads(text)
    except orjson.JSONDecodeError:
        raise ProtocolError("text frame is not JSON") from None
    return _from_json_object(value, [])


def parse_json_binary(frame: bytes) -> Message:
    """Read a client's JSON-protocol binary frame (a message with buffers)."""
    size = len(frame)
    if size < 4:
        raise ProtocolError(f"truncated binary frame: {size} bytes")
    count = int.from_bytes(frame[:4], "big")
    if count < 1 or 4 * (count + 1) > size:
        raise ProtocolError(f"malformed binary frame: {count} offsets in {size} bytes")
    offsets = [*struct.unpack_from(f">{count}I", frame, 4), size]
    if offsets[0] != 4 * (count + 1) or any(
        later < earlier for earlier, later in itertools.pairwise(offsets)
    ):
        raise ProtocolError("malformed binary frame: offsets out of order or out of range")
    view = memoryview(frame)
    try:
        value = orjson.loads(view[offsets[0] : offsets[1]])
    except orjson.JSONDecodeError:
        raise ProtocolError("binary frame does not start with a JSON message") from None
    buffers: list[Part] = [view[offsets[i] : offsets[i + 1]] for i in range(1, count)]
    return _from_json_object(value, buffers)


def make_message(
    channel: str,
    msg_type: str,
    content: dict[str, Any],
    *,
    session: str,
    parent: bytes = b"{}",
) -> Message:
    """A message the server itself says (a status, an error reply), in the kernel's name.

    ``session`` should be the kernel's session id: JupyterLab drops messages from other
    sessions while it handles a kernel's output.
    """
    header = {
        "msg_id": uuid.uuid4().hex,
        "msg_type": msg_type,
        "username": "junction",
        "session": session,
        "date": datetime.now(UTC).isoformat().replace("+00:00", "Z"),
        "version": PROTOCOL_VERSION,
    }
    parts: list[Part] = [orjson.dumps(header), parent, b"{}", orjson.dumps(content)]
    return Message(channel, parts, header)
