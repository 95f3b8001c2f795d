"""Jupyter messages and the kernel WebSocket's two wire formats.

- JSON (the legacy protocol, no subprotocol): one text frame per message, a JSON object with
  ``channel``, ``header``, ``parent_header``, ``metadata``, ``content``, ``buffers``.
- v1 (subprotocol ``v1.kernel.websocket.jupyter.org``): one binary frame; a little-endian u64
  count of offsets, the offsets, then channel, header, parent_header, metadata, content and any
  buffers back to back (api-contract §10).

Incoming messages decode lazily: the scenarios need only the channel, the type and the parent's
id for most messages, so the content is parsed only when asked for.
"""

from __future__ import annotations

import json
import struct
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

__all__ = [
    "V1_SUBPROTOCOL",
    "Incoming",
    "decode_json",
    "decode_v1",
    "encode_json",
    "encode_v1",
    "execute_content",
    "new_header",
]

V1_SUBPROTOCOL = "v1.kernel.websocket.jupyter.org"
PROTOCOL_VERSION = "5.3"


def new_header(msg_type: str, session: str) -> dict[str, Any]:
    """A fresh message header."""
    return {
        "msg_id": uuid.uuid4().hex,
        "msg_type": msg_type,
        "username": "bench",
        "session": session,
        "date": datetime.now(UTC).isoformat(),
        "version": PROTOCOL_VERSION,
    }


def execute_content(code: str) -> dict[str, Any]:
    """The content of an ``execute_request`` running ``code`` the way a notebook cell does."""
    return {
        "code": code,
        "silent": False,
        "store_history": False,
        "user_expressions": {},
        "allow_stdin": False,
        "stop_on_error": True,
    }


def encode_json(channel: str, header: dict[str, Any], content: dict[str, Any]) -> str:
    """A message as one text frame of the JSON protocol."""
    return json.dumps(
        {
            "channel": channel,
            "header": header,
            "parent_header": {},
            "metadata": {},
            "content": content,
            "buffers": [],
        }
    )


def encode_v1(channel: str, header: dict[str, Any], content: dict[str, Any]) -> bytes:
    """A message as one binary frame of the v1 protocol."""
    parts = [
        channel.encode(),
        json.dumps(header).encode(),
        b"{}",
        b"{}",
        json.dumps(content).encode(),
    ]
    count = len(parts) + 1
    offsets = [8 * (count + 1)]
    for part in parts:
        offsets.append(offsets[-1] + len(part))
    return struct.pack(f"<{count + 1}Q", count, *offsets) + b"".join(parts)


@dataclass
class Incoming:
    """A message received from a kernel, decoded as far as needed."""

    channel: str
    msg_type: str
    parent_id: str | None
    size: int
    _content: bytes | dict[str, Any] = field(repr=False)

    def newlines(self) -> int:
        """How many lines a ``stream`` message carries (without parsing a raw content)."""
        if isinstance(self._content, dict):
            return str(self._content.get("text", "")).count("\n")
        return self._content.count(b"\\n")  # JSON escapes a newline as backslash-n

    def content(self) -> dict[str, Any]:
        """The message's content (parsed on first use)."""
        if isinstance(self._content, dict):
            return self._content
        parsed: dict[str, Any] = json.loads(self._content)
        self._content = parsed
        return parsed


def decode_json(frame: str | bytes) -> Incoming:
    """Decode a text frame of the JSON protocol."""
    if isinstance(frame, bytes):
        # A binary frame in the JSON protocol carries buffers: u32 BE count, offsets, JSON.
        (count,) = struct.unpack_from(">I", frame, 0)
        offsets = struct.unpack_from(f">{count}I", frame, 4)
        end = offsets[1] if count > 1 else len(frame)
        message = json.loads(frame[offsets[0] : end])
    else:
        message = json.loads(frame)
    parent = message.get("parent_header") or {}
    return Incoming(
        message.get("channel", ""),
        message["header"]["msg_type"],
        parent.get("msg_id"),
        len(frame),
        message.get("content", {}),
    )


def decode_v1(frame: bytes) -> Incoming:
    """Decode a binary frame of the v1 protocol (the content stays raw until asked for)."""
    (count,) = struct.unpack_from("<Q", frame, 0)
    offsets = struct.unpack_from(f"<{count}Q", frame, 8)
    view = memoryview(frame)
    channel = bytes(view[offsets[0] : offsets[1]]).decode()
    header = json.loads(bytes(view[offsets[1] : offsets[2]]))
    parent_raw = bytes(view[offsets[2] : offsets[3]])
    parent_id = json.loads(parent_raw).get("msg_id") if len(parent_raw) > 2 else None
    content = bytes(view[offsets[4] : offsets[5]])
    return Incoming(channel, header["msg_type"], parent_id, len(frame), content)
