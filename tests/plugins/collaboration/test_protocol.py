"""The room protocol's framing and the conflict copy's name."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from junction.plugins.collaboration.document import conflict_path, room_kind
from junction.plugins.collaboration.protocol import (
    SYNC_UPDATE,
    AwarenessEntry,
    ProtocolError,
    Reader,
    awareness_message,
    parse_awareness,
    sync_message,
)


def test_awareness_round_trip() -> None:
    entries = [AwarenessEntry(1, 2, '{"user": {"name": "a"}}'), AwarenessEntry(300, 0, "null")]
    frame = awareness_message(entries)
    reader = Reader(frame)
    assert reader.uint() == 1
    assert parse_awareness(reader.bytes()) == entries


def test_sync_message_carries_its_payload() -> None:
    reader = Reader(sync_message(SYNC_UPDATE, b"\x01\x02"))
    assert (reader.uint(), reader.uint(), reader.bytes()) == (0, 2, b"\x01\x02")
    assert reader.done


@pytest.mark.parametrize(
    "frame", [b"", b"\xff", b"\x80" * 11, b"\x00\x02\x05\x01", b"\x01\x03\x01\x01\x01"]
)
def test_malformed_frames_raise(frame: bytes) -> None:
    def parse() -> None:
        reader = Reader(frame)
        reader.uint()
        reader.uint()
        parse_awareness(reader.bytes())

    with pytest.raises(ProtocolError):
        parse()


def test_conflict_copy_sits_next_to_the_file() -> None:
    moment = datetime(2026, 12, 6, 20, 5, 9, tzinfo=UTC)
    assert conflict_path("a/nb.ipynb", moment) == "a/nb (conflict 2026-12-06 200509).ipynb"
    assert conflict_path("README", moment) == "README (conflict 2026-12-06 200509)"


def test_room_kinds() -> None:
    assert room_kind("json", "notebook") == ("json", "notebook")
    assert room_kind("text", "file") == ("text", "file")
    assert room_kind("text", "notebook") is None
    assert room_kind("json", "nope") is None
