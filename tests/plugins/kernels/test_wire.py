"""Message formats: ZeroMQ parts, v1 and JSON WebSocket frames, signing. No kernel needed."""

from __future__ import annotations

import hashlib
import hmac
import json
import struct

import pytest

from junction.plugins.kernels.wire import (
    DELIMITER,
    Message,
    ProtocolError,
    Signer,
    from_zmq,
    make_message,
    parse_json_binary,
    parse_json_text,
    parse_v1,
    to_zmq,
)

HEADER = {"msg_id": "m1", "msg_type": "comm_msg", "session": "s1", "version": "5.4"}


def _v1(channel: bytes, parts: list[bytes]) -> bytes:
    """A v1 frame, built by hand from the protocol's description."""
    count = 2 + len(parts)
    offsets = [8 * (count + 1)]
    for piece in (channel, *parts):
        offsets.append(offsets[-1] + len(piece))
    return struct.pack(f"<{count + 1}Q", count, *offsets) + channel + b"".join(parts)


def _kernel_message(buffers: list[bytes]) -> Message:
    parts: list[bytes | memoryview] = [
        json.dumps(HEADER).encode(),
        b'{"msg_id":"p1"}',
        b"{}",
        b'{"data":{"x":"\xc3\xa9"}}',
        *buffers,
    ]
    return Message("iopub", parts, HEADER)


def test_v1_frame_copies_parts_verbatim_with_little_endian_offsets() -> None:
    message = _kernel_message([b"\x00\x01", b"buffer two"])
    frame = message.v1_frame()
    assert frame == _v1(b"iopub", [bytes(p) for p in message.parts])
    count = struct.unpack_from("<Q", frame)[0]
    assert count == 8
    assert struct.unpack_from("<Q", frame, 8)[0] == 8 * (count + 1)
    assert frame.endswith(b"buffer two")
    assert message.v1_frame() is frame  # encoded once, shared by every client


def test_json_text_frame_splices_raw_parts_and_adds_msg_id_and_type() -> None:
    frame = _kernel_message([]).json_frame()
    assert isinstance(frame, str)
    assert json.loads(frame) == {
        "channel": "iopub",
        "header": HEADER,
        "parent_header": {"msg_id": "p1"},
        "metadata": {},
        "content": {"data": {"x": "é"}},
        "buffers": [],
        "msg_id": "m1",
        "msg_type": "comm_msg",
    }


def test_json_binary_frame_puts_buffers_after_big_endian_offsets() -> None:
    frame = _kernel_message([b"abc", b"\xff" * 5]).json_frame()
    assert isinstance(frame, bytes)
    count, json_at, first_at, second_at = struct.unpack_from(">4I", frame)
    assert (count, json_at) == (3, 16)
    body = json.loads(frame[json_at:first_at])
    assert "buffers" not in body
    assert body["content"] == {"data": {"x": "é"}}
    assert frame[first_at:second_at] == b"abc"
    assert frame[second_at:] == b"\xff" * 5


def test_parse_v1_reads_routing_fields_and_keeps_parts_as_views() -> None:
    header = json.dumps({"msg_id": "a", "msg_type": "execute_request"}).encode()
    frame = _v1(b"shell", [header, b"{}", b"{}", b'{"code":"1"}', b"raw"])
    message = parse_v1(frame)
    assert message.channel == "shell"
    assert (message.msg_id, message.msg_type) == ("a", "execute_request")
    assert [bytes(part) for part in message.parts] == [
        header,
        b"{}",
        b"{}",
        b'{"code":"1"}',
        b"raw",
    ]
    assert isinstance(message.parts[3], memoryview)  # content is never decoded


@pytest.mark.parametrize(
    ("frame", "problem"),
    [
        (b"\x06\x00", "truncated v1 frame"),
        (struct.pack("<Q", 2) + b"\x00" * 16, "malformed v1 frame: 2 offsets"),
        (struct.pack("<Q", 1000) + b"\x00" * 48, "malformed v1 frame: 1000 offsets"),
        (_v1(b"shell", [b"{}", b"{}", b"{}", b"{}"])[:-1], "offsets span"),
        (
            struct.pack("<7Q", 6, 56, 61, 60, 62, 63, 66) + b"shell{}{}{",
            "offsets decrease",
        ),
        (_v1(b"iopub", [b"{}"] * 4), "unknown channel 'iopub'"),
        (_v1(b"\xff", [b"{}"] * 4), "channel is not UTF-8"),
        (_v1(b"shell", [b"nope", b"{}", b"{}", b"{}"]), "header is not valid JSON"),
        (_v1(b"shell", [b"[]", b"{}", b"{}", b"{}"]), "msg_id and msg_type"),
    ],
    ids=[
        "short",
        "too-few-offsets",
        "offsets-beyond-frame",
        "truncated",
        "decreasing",
        "iopub",
        "bad-channel",
        "bad-header",
        "header-not-object",
    ],
)
def test_parse_v1_refuses_malformed_frames(frame: bytes, problem: str) -> None:
    with pytest.raises(ProtocolError, match=problem) as refused:
        parse_v1(frame)
    assert refused.value.code == 1007


def test_parse_json_text_reencodes_the_four_parts() -> None:
    text = json.dumps(
        {
            "channel": "stdin",
            "header": {"msg_id": "r", "msg_type": "input_reply"},
            "parent_header": {"msg_id": "q"},
            "content": {"value": "ana"},
        }
    )
    message = parse_json_text(text)
    assert message.channel == "stdin"
    assert json.loads(bytes(message.parts[1])) == {"msg_id": "q"}
    assert json.loads(bytes(message.parts[2])) == {}
    assert json.loads(bytes(message.parts[3])) == {"value": "ana"}


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("not json", "text frame is not JSON"),
        ("[1, 2]", "message is not a JSON object"),
        ('{"channel": "shell", "header": {"msg_id": 1}}', "msg_id and msg_type"),
        ('{"channel": "hb", "header": {}}', "unknown channel 'hb'"),
    ],
)
def test_parse_json_text_refuses_bad_messages(text: str, problem: str) -> None:
    with pytest.raises(ProtocolError, match=problem):
        parse_json_text(text)


def test_parse_json_binary_splits_the_buffers() -> None:
    body = json.dumps(
        {"channel": "shell", "header": {"msg_id": "b", "msg_type": "comm_msg"}, "content": {}}
    ).encode()
    frame = struct.pack(">3I", 2, 12, 12 + len(body)) + body + b"\x00\x01\x02"
    message = parse_json_binary(frame)
    assert [bytes(part) for part in message.parts[4:]] == [b"\x00\x01\x02"]


@pytest.mark.parametrize(
    ("frame", "problem"),
    [
        (b"\x00\x00", "truncated binary frame"),
        (struct.pack(">I", 0), "malformed binary frame: 0 offsets"),
        (struct.pack(">3I", 2, 12, 11) + b"{}", "out of order"),
        (struct.pack(">2I", 1, 8) + b"{oops", "does not start with a JSON message"),
    ],
    ids=["short", "no-offsets", "decreasing", "not-json"],
)
def test_parse_json_binary_refuses_bad_frames(frame: bytes, problem: str) -> None:
    with pytest.raises(ProtocolError, match=problem):
        parse_json_binary(frame)


def test_signer_signs_the_four_json_parts_with_hmac_sha256() -> None:
    signer = Signer(b"secret")
    parts = [b"h", b"p", b"m", b"c", b"buffer is not signed"]
    expected = hmac.new(b"secret", b"hpmc", hashlib.sha256).hexdigest().encode()
    assert signer.sign(parts) == expected
    assert signer.verify(expected, parts)
    assert not signer.verify(b"0" * 64, parts)
    assert Signer(b"").sign(parts) == b""
    with pytest.raises(ValueError, match="unsupported signature scheme"):
        Signer(b"k", "rsa-sha256")


def test_zmq_round_trip_checks_the_signature() -> None:
    signer = Signer(b"key")
    message = make_message("shell", "kernel_info_request", {}, session="s")
    frames = [bytes(part) for part in to_zmq(message, signer)]
    assert frames[0] == DELIMITER
    back = from_zmq("shell", [b"identity", *frames], signer)
    assert back.msg_id == message.msg_id
    frames[1] = b"forged"
    with pytest.raises(ValueError, match="bad signature"):
        from_zmq("shell", frames, signer)
    with pytest.raises(ValueError, match="delimiter"):
        from_zmq("shell", frames[1:], signer)
    with pytest.raises(ValueError, match="expected at least 4"):
        from_zmq("shell", frames[:4], Signer(b""))


def test_made_messages_carry_the_kernel_session_and_parent() -> None:
    message = make_message(
        "iopub", "status", {"execution_state": "idle"}, session="kernel", parent=b'{"msg_id":"x"}'
    )
    assert message.header["session"] == "kernel"
    assert message.header["date"].endswith("Z")
    assert message.parent == {"msg_id": "x"}
    assert message.content() == {"execution_state": "idle"}
