"""The room protocol's framing (y-protocols over binary WebSocket frames).

Every frame is one message: a varuint type, then its body. ``SYNC`` (0) carries a sync
sub-type (step 1, step 2, update) and a varbytes payload; ``AWARENESS`` (1) a varbytes list
of ``(client id, clock, JSON state)``; ``RAW`` (2) a varstring command (``"save"`` and a
varuint request id) from a client, or a varstring JSON answer from the server;
``QUERY_AWARENESS`` (3) nothing. The parsers here raise :class:`ProtocolError` on any frame
that does not follow the format, so a bad client is disconnected and no other is affected.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

__all__ = [
    "AWARENESS",
    "QUERY_AWARENESS",
    "RAW",
    "SYNC",
    "SYNC_STEP1",
    "SYNC_STEP2",
    "SYNC_UPDATE",
    "AwarenessEntry",
    "ProtocolError",
    "Reader",
    "awareness_message",
    "raw_message",
    "sync_message",
]

SYNC, AWARENESS, RAW, QUERY_AWARENESS = 0, 1, 2, 3
SYNC_STEP1, SYNC_STEP2, SYNC_UPDATE = 0, 1, 2


class ProtocolError(ValueError):
    """A frame that does not follow the room protocol."""


class Reader:
    """Reads lib0-encoded values from one frame, checking every bound."""

    def __init__(self, data: bytes) -> None:
        self.data = data
        self.pos = 0

    def uint(self) -> int:
        """A varuint (7 bits per byte, little-endian, high bit: more follow)."""
        value = shift = 0
        while True:
            if self.pos >= len(self.data):
                raise ProtocolError("truncated varuint")
            byte = self.data[self.pos]
            self.pos += 1
            value |= (byte & 0x7F) << shift
            if byte < 0x80:
                return value
            shift += 7
            if shift > 63:
                raise ProtocolError("varuint too long")

    def bytes(self) -> bytes:
        """A varbytes value: a varuint length, then that many bytes."""
        length = self.uint()
        end = self.pos + length
        if end > len(self.data):
            raise ProtocolError("truncated payload")
        chunk = self.data[self.pos : end]
        self.pos = end
        return chunk

    def string(self) -> str:
        """A varstring: UTF-8 varbytes."""
        try:
            return self.bytes().decode("utf-8")
        except UnicodeDecodeError as exc:
            raise ProtocolError("string is not UTF-8") from exc

    @property
    def done(self) -> bool:
        """Whether the whole frame was read."""
        return self.pos >= len(self.data)


@dataclass(frozen=True, slots=True)
class AwarenessEntry:
    """One client's awareness state; ``state`` is the JSON text (``"null"``: gone)."""

    client_id: int
    clock: int
    state: str


def parse_awareness(payload: bytes) -> list[AwarenessEntry]:
    """The entries of an awareness payload; raises :class:`ProtocolError`."""
    reader = Reader(payload)
    count = reader.uint()
    entries = []
    for _ in range(count):
        client_id, clock = reader.uint(), reader.uint()
        state = reader.string()
        try:
            json.loads(state)
        except ValueError as exc:
            raise ProtocolError("awareness state is not JSON") from exc
        entries.append(AwarenessEntry(client_id, clock, state))
    return entries


def awareness_message(entries: list[AwarenessEntry]) -> bytes:
    """An ``AWARENESS`` frame carrying ``entries``."""
    from pycrdt import Encoder, write_var_uint  # pycrdt loads with the first room, not at startup

    encoder = Encoder()
    encoder.write_var_uint(len(entries))
    for entry in entries:
        encoder.write_var_uint(entry.client_id)
        encoder.write_var_uint(entry.clock)
        encoder.write_var_string(entry.state)
    payload = encoder.to_bytes()
    return write_var_uint(AWARENESS) + write_var_uint(len(payload)) + payload


def sync_message(sub_type: int, payload: bytes) -> bytes:
    """A ``SYNC`` frame: step 1 (a state vector), step 2 or update (an update)."""
    from pycrdt import write_var_uint

    return bytes([SYNC, sub_type]) + write_var_uint(len(payload)) + payload


def raw_message(answer: dict[str, Any]) -> bytes:
    """A ``RAW`` frame from the server: a JSON answer (save status, conflict)."""
    from pycrdt import write_var_uint

    text = json.dumps(answer).encode()
    return write_var_uint(RAW) + write_var_uint(len(text)) + text
