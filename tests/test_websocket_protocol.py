"""The frame writer: synchronous WebSocket writes on uvicorn, framed as RFC 6455 says."""

from __future__ import annotations

import asyncio
import socket
import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest
import uvicorn
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosedOK

from junction.websocket_protocol import FrameWriter, FrameWriterProtocol, frame_writer

pytestmark = pytest.mark.anyio

BIG = b"x" * 70_000  # needs the 8-byte length form
MESSAGES: list[Any] = [
    b"",
    b"a" * 125,  # the largest one-byte length
    "text, \u00e9t\u00e9",
    b"b" * 126,  # the smallest two-byte length
    b"c" * 65_535,
    [BIG, memoryview(b"tail")],  # one message in pieces
]
EXPECTED: list[bytes | str] = [
    b"",
    b"a" * 125,
    "text, \u00e9t\u00e9",
    b"b" * 126,
    b"c" * 65_535,
    BIG + b"tail",
]


class _App:
    """Writes MESSAGES through the frame writer, then closes through ASGI."""

    def __init__(self) -> None:
        self.writers: list[FrameWriter | None] = []
        self.errors: list[BaseException] = []

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "websocket":
            return
        await receive()
        await send({"type": "websocket.accept"})
        writer = frame_writer(scope)
        self.writers.append(writer)
        if writer is None:
            return
        assert writer.writable
        writer.write(MESSAGES[:3])  # one write for several frames
        writer.write(MESSAGES[3:])
        await send({"type": "websocket.close", "code": 1000, "reason": "done"})
        assert writer.closed
        try:
            writer.write([b"after close"])
        except ConnectionError as exc:
            self.errors.append(exc)


@pytest.fixture
def served() -> Iterator[tuple[str, _App]]:
    app = _App()
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    config = uvicorn.Config(app, ws=FrameWriterProtocol, lifespan="off", log_level="warning")
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        assert thread.is_alive()
        assert time.monotonic() < deadline
        time.sleep(0.01)
    try:
        yield f"ws://127.0.0.1:{sock.getsockname()[1]}/", app
    finally:
        server.should_exit = True
        thread.join(30)
        sock.close()


async def test_frames_written_directly_arrive_whole_and_in_order(
    served: tuple[str, _App],
) -> None:
    url, app = served
    received: list[bytes | str] = []
    async with connect(url, max_size=None) as ws:
        try:
            while True:
                received.append(await asyncio.wait_for(ws.recv(), 10))
        except ConnectionClosedOK:
            pass
        assert ws.close_code == 1000
        assert ws.close_reason == "done"
    assert received == EXPECTED
    assert isinstance(app.writers[0], FrameWriter)
    assert [str(error) for error in app.errors] == ["the WebSocket is closed"]


def test_the_extension_is_absent_without_the_protocol() -> None:
    assert (
        frame_writer({"type": "websocket", "extensions": {"websocket.http.response": {}}}) is None
    )
    assert frame_writer({"type": "websocket"}) is None
    spoofed = {"extensions": {"junction.websocket.frame_writer": {"writer": "not a writer"}}}
    assert frame_writer(spoofed) is None
