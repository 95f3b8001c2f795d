"""The frame writer: synchronous WebSocket writes on uvicorn, framed as RFC 6455 says."""

from __future__ import annotations

import asyncio
import contextlib
import socket
import threading
import time
from collections.abc import Iterator
from typing import Any

import anyio
import pytest
import uvicorn
from websockets.asyncio.client import connect
from websockets.client import ClientProtocol
from websockets.exceptions import ConnectionClosedOK
from websockets.http11 import Response
from websockets.uri import parse_uri

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


@contextlib.contextmanager
def _serve(app: Any) -> Iterator[str]:
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
        yield f"ws://127.0.0.1:{sock.getsockname()[1]}/"
    finally:
        server.should_exit = True
        thread.join(30)
        sock.close()


@pytest.fixture
def served() -> Iterator[tuple[str, _App]]:
    app = _App()
    with _serve(app) as url:
        yield url, app


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


class _CloserApp:
    """Writes until the client's socket is full, then closes it with 1013."""

    def __init__(self) -> None:
        self.closed_in_time: list[bool] = []

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "websocket":
            return
        await receive()
        await send({"type": "websocket.accept"})
        writer = frame_writer(scope)
        assert writer is not None
        chunk = b"z" * 65_536
        for _ in range(4_000):  # 256 MiB at most; a client that stops reading fills up first
            if not writer.writable:
                break
            writer.write([chunk])
            await asyncio.sleep(0)
        assert not writer.writable
        sent = False
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(2):
                await send({"type": "websocket.close", "code": 1013, "reason": "too slow"})
                sent = True
        self.closed_in_time.append(sent)


@pytest.fixture
def closer() -> Iterator[tuple[str, _CloserApp]]:
    app = _CloserApp()
    with _serve(app) as url:
        yield url, app


async def test_a_client_that_stopped_reading_still_gets_its_close_code(
    closer: tuple[str, _CloserApp],
) -> None:
    url, app = closer
    client = ClientProtocol(parse_uri(url), max_size=None)
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    sock.settimeout(10)
    port = int(url.rsplit(":", 1)[1].strip("/"))
    try:
        sock.connect(("127.0.0.1", port))
        client.send_request(client.connect())
        sock.sendall(b"".join(client.data_to_send()))
        while not any(isinstance(event, Response) for event in client.events_received()):
            client.receive_data(sock.recv(4096))
        with anyio.fail_after(30):
            while not app.closed_in_time:  # the client reads nothing meanwhile
                await asyncio.sleep(0.05)
        while client.close_rcvd is None:  # now it reads everything
            data = sock.recv(1 << 20)
            if not data:
                break
            client.receive_data(data)
            client.events_received()
    finally:
        sock.close()
    assert app.closed_in_time == [True]
    assert client.close_rcvd is not None
    assert client.close_rcvd.code == 1013
    assert client.close_rcvd.reason == "too slow"
