"""The apps proxy's HTTP forwarder against real uvicorn apps on loopback (and a Unix socket).

``forwarder.py`` is driven directly (pooling, retries, timeouts, streaming) and through
``proxy_http`` served by uvicorn (what a browser sees: streaming both ways, 504, a client
that goes away mid-download).
"""

from __future__ import annotations

import asyncio
import socket
import tempfile
import threading
import time
import tracemalloc
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import parse_qs

import anyio
import httpx
import pytest
import uvicorn
from starlette.types import ASGIApp, Receive, Scope, Send

from junction.plugins.apps.forwarder import (
    Forwarder,
    InvalidRequest,
    Upstream,
    UpstreamClosed,
    UpstreamTimeout,
    UpstreamUnreachable,
)
from junction.plugins.apps.proxy import proxy_http, upstream_headers

pytestmark = pytest.mark.anyio

CHUNK = b"x" * (64 * 1024)


@dataclass
class AppState:
    """What the upstream app saw, shared with the test (it runs in another thread)."""

    uploads: list[list[int]] = field(default_factory=list)
    first_upload_chunk: threading.Event = field(default_factory=threading.Event)
    download_gone: threading.Event = field(default_factory=threading.Event)
    slow_gone: threading.Event = field(default_factory=threading.Event)


def upstream_app(state: AppState) -> ASGIApp:
    """An app answering by path: ``/`` its client's port, ``/cookie`` sets a cookie and
    echoes the one received, ``/upload`` counts body messages, ``/bytes?n=`` streams ``n``
    bytes (forever if ``n`` is 0), ``/status?code=`` an empty answer, ``/reject`` a 413
    without reading the body, ``/close`` with ``Connection: close``, ``/slow`` never
    answers."""

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        assert scope["type"] == "http"
        path = scope["path"]
        query = parse_qs(scope["query_string"].decode())
        headers: list[tuple[bytes, bytes]] = []
        status, body = 200, b""
        if path == "/":
            body = str(scope["client"][1] if scope.get("client") else 0).encode()
        elif path == "/cookie":
            headers.append((b"set-cookie", b"app_session=private; Path=/"))
            body = dict(scope["headers"]).get(b"cookie", b"")
        elif path == "/upload":
            sizes: list[int] = []
            while True:
                message = await receive()
                sizes.append(len(message.get("body", b"")))
                state.first_upload_chunk.set()
                if not message.get("more_body"):
                    break
            state.uploads.append(sizes)
            body = str(sum(sizes)).encode()
        elif path == "/bytes":
            await _download(int(query["n"][0]), state, receive, send)
            return
        elif path == "/status":
            status = int(query["code"][0])
        elif path == "/reject":
            status, body = 413, b"too large"
        elif path == "/close":
            headers.append((b"connection", b"close"))
            body = b"bye"
        elif path == "/slow":
            while (await receive())["type"] != "http.disconnect":
                pass
            state.slow_gone.set()
            return
        if status not in (204, 304):
            headers.append((b"content-length", str(len(body)).encode()))
        await send({"type": "http.response.start", "status": status, "headers": headers})
        await send({"type": "http.response.body", "body": body})

    return app


async def _download(size: int, state: AppState, receive: Receive, send: Send) -> None:
    async def watch() -> None:
        while (await receive())["type"] != "http.disconnect":
            pass
        state.download_gone.set()

    watcher = asyncio.create_task(watch())
    await send({"type": "http.response.start", "status": 200, "headers": []})
    sent = 0
    try:
        while (size == 0 or sent < size) and not watcher.done():
            part = CHUNK[: size - sent] if size else CHUNK
            await send({"type": "http.response.body", "body": part, "more_body": True})
            sent += len(part)
            await asyncio.sleep(0)  # let the watcher see a disconnect
    finally:
        watcher.cancel()
    await send({"type": "http.response.body", "body": b""})


@contextmanager
def serve(app: ASGIApp, sock: socket.socket, lifespan: bool = False) -> Iterator[uvicorn.Server]:
    """Run ``app`` on uvicorn in a thread, listening on ``sock``."""
    config = uvicorn.Config(
        app,
        log_level="warning",
        lifespan="on" if lifespan else "off",
        timeout_graceful_shutdown=2,
        ws="none",
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        assert thread.is_alive(), "uvicorn stopped while starting"
        assert time.monotonic() < deadline, "uvicorn did not start"
        time.sleep(0.01)
    try:
        yield server
    finally:
        server.should_exit = True
        thread.join(30)
        sock.close()
        assert not thread.is_alive()


@dataclass
class Apps:
    """Two upstream apps (TCP and Unix socket) and a proxy in front of the TCP one."""

    state: AppState
    tcp: Upstream
    unix: Upstream
    proxy_url: str
    proxy_forwarder: Forwarder


def _proxy_app(port: int, forwarder: Forwarder) -> ASGIApp:
    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":  # the pool closes with its event loop, as in Junction
            while (await receive())["type"] != "lifespan.shutdown":
                await send({"type": "lifespan.startup.complete"})
            await forwarder.aclose()
            await send({"type": "lifespan.shutdown.complete"})
            return
        if scope["type"] != "http":
            return
        headers = upstream_headers(
            scope["headers"],
            junction_cookie=lambda name: name.startswith("junction-"),
            junction_token=lambda token: False,
            client_ip="127.0.0.1",
            scheme="http",
            prefix="/",
            user=None,
        )
        await proxy_http(
            scope,
            receive,
            send,
            client=forwarder,
            port=port,
            path=scope["path"],
            headers=headers,
            junction_cookie=lambda name: name.startswith("junction-"),
        )

    return app


@pytest.fixture(scope="module")
def apps() -> Iterator[Apps]:
    state = AppState()
    tcp = socket.socket()
    tcp.bind(("127.0.0.1", 0))
    port = tcp.getsockname()[1]
    with tempfile.TemporaryDirectory(prefix="fwd-") as folder:
        path = str(Path(folder) / "app.sock")
        unix = socket.socket(socket.AF_UNIX)
        unix.bind(path)
        front = socket.socket()
        front.bind(("127.0.0.1", 0))
        forwarder = Forwarder(response_timeout=1.0)
        app = upstream_app(state)
        proxy = _proxy_app(port, forwarder)
        with serve(app, tcp), serve(app, unix), serve(proxy, front, lifespan=True):
            url = f"http://127.0.0.1:{front.getsockname()[1]}"
            yield Apps(state, Upstream("127.0.0.1", port), Upstream(path=path), url, forwarder)


async def _get(forwarder: Forwarder, upstream: Upstream, target: bytes) -> tuple[int, bytes]:
    response = await forwarder.request(upstream, b"GET", target, [])
    async with response:
        body = b"".join([chunk async for chunk in response.stream()])
    return response.status, body


async def _wait_for(condition: Callable[[], bool], what: str, seconds: float = 20) -> None:
    with anyio.fail_after(seconds):
        while not condition():
            await anyio.sleep(0.01)
    assert condition(), what


async def test_keep_alive_connections_are_reused(apps: Apps) -> None:
    forwarder = Forwarder()
    try:
        ports = {(await _get(forwarder, apps.tcp, b"/"))[1] for _ in range(5)}
        assert len(ports) == 1
        assert forwarder.opened == 1
        assert forwarder.idle(apps.tcp) == 1
        assert forwarder.active == 0
    finally:
        await forwarder.aclose()
    assert forwarder.idle(apps.tcp) == 0


async def test_concurrent_requests_each_get_a_connection_then_share_the_pool(apps: Apps) -> None:
    forwarder = Forwarder(max_idle=3)
    try:
        async with anyio.create_task_group() as group:
            for _ in range(6):
                group.start_soon(_get, forwarder, apps.tcp, b"/")
        assert forwarder.active == 0
        assert forwarder.idle(apps.tcp) <= 3
        opened = forwarder.opened
        await _get(forwarder, apps.tcp, b"/")
        assert forwarder.opened == opened
    finally:
        await forwarder.aclose()


async def test_a_unix_socket_app(apps: Apps) -> None:
    forwarder = Forwarder()
    try:
        assert await _get(forwarder, apps.unix, b"/") == (200, b"0")
        assert await _get(forwarder, apps.unix, b"/") == (200, b"0")
        assert forwarder.opened == 1
    finally:
        await forwarder.aclose()


async def test_no_connection_is_kept_after_connection_close_or_an_unread_body(
    apps: Apps,
) -> None:
    forwarder = Forwarder()
    try:
        assert await _get(forwarder, apps.tcp, b"/close") == (200, b"bye")
        assert forwarder.idle(apps.tcp) == 0
        response = await forwarder.request(apps.tcp, b"GET", b"/bytes?n=1048576", [])
        async with response:
            async for _ in response.stream():
                break
        assert forwarder.idle(apps.tcp) == 0
        assert forwarder.active == 0
        assert (await _get(forwarder, apps.tcp, b"/"))[0] == 200
        assert forwarder.opened == 3
    finally:
        await forwarder.aclose()


@pytest.mark.parametrize(("method", "target"), [(b"HEAD", b"/"), (b"GET", b"/status?code=204")])
async def test_answers_without_a_body_keep_the_connection(
    apps: Apps, method: bytes, target: bytes
) -> None:
    forwarder = Forwarder()
    try:
        for _ in range(2):
            response = await forwarder.request(apps.tcp, method, target, [])
            async with response:
                assert [chunk async for chunk in response.stream()] == []
        assert response.status in (200, 204)
        not_modified = await _get(forwarder, apps.tcp, b"/status?code=304")
        assert not_modified == (304, b"")
        assert forwarder.opened == 1
    finally:
        await forwarder.aclose()


async def test_a_cookie_one_app_sets_never_reaches_another(apps: Apps) -> None:
    forwarder = Forwarder()
    try:
        first = await forwarder.request(apps.tcp, b"GET", b"/cookie", [])
        async with first:
            assert b"".join([c async for c in first.stream()]) == b""
        assert (b"set-cookie", b"app_session=private; Path=/") in first.headers
        assert await _get(forwarder, apps.unix, b"/cookie") == (200, b"")
        assert await _get(forwarder, apps.tcp, b"/cookie") == (200, b"")
    finally:
        await forwarder.aclose()


class _ClosingServer:
    """A raw HTTP/1.1 server that answers the first request of each connection with
    keep-alive, then closes the connection when the next request arrives (the race with an
    app's keep-alive timeout)."""

    def __init__(self) -> None:
        self.requests: list[bytes] = []

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        for answer in (True, False):
            try:
                head = await reader.readuntil(b"\r\n\r\n")
            except (asyncio.IncompleteReadError, ConnectionError):
                break
            self.requests.append(head.split(b" ", 1)[0])
            if answer:
                writer.write(b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok")
                await writer.drain()
        writer.transport.abort()


async def test_a_reused_connection_the_app_closed_is_retried_only_when_safe() -> None:
    closing = _ClosingServer()
    server = await asyncio.start_server(closing.handle, "127.0.0.1", 0)
    upstream = Upstream("127.0.0.1", server.sockets[0].getsockname()[1])
    forwarder = Forwarder()
    try:
        assert await _get(forwarder, upstream, b"/") == (200, b"ok")
        assert await _get(forwarder, upstream, b"/") == (200, b"ok")
        assert forwarder.opened == 2
        assert closing.requests == [b"GET", b"GET", b"GET"]

        async def body() -> AsyncIterator[bytes]:
            yield b"once"

        length = [(b"content-length", b"4")]
        with pytest.raises(UpstreamClosed):
            await forwarder.request(upstream, b"PUT", b"/", length, body())
        assert await _get(forwarder, upstream, b"/") == (200, b"ok")
        with pytest.raises(UpstreamClosed):
            await forwarder.request(upstream, b"POST", b"/", [(b"content-length", b"0")])
        assert closing.requests == [b"GET", b"GET", b"GET", b"PUT", b"GET", b"POST"]
        assert forwarder.opened == 3
        assert forwarder.active == 0
    finally:
        await forwarder.aclose()
        server.close()
        await server.wait_closed()


class _OverflowingServer:
    """A raw HTTP/1.1 server whose answers carry more bytes than their framing says, in the
    same write as the response: a body on HEAD, a Content-Length one byte short."""

    def __init__(self) -> None:
        self.connections = 0
        self.open = 0
        self.all_closed = asyncio.Event()

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        self.open += 1
        try:
            await self._answer(reader, writer)
        finally:
            writer.transport.abort()
            self.open -= 1
            if not self.open:
                self.all_closed.set()

    async def _answer(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        while True:
            try:
                head = await reader.readuntil(b"\r\n\r\n")
            except (asyncio.IncompleteReadError, ConnectionError):
                break
            method, target = head.split(b" ")[:2]
            body = b"answer to " + target
            if method == b"HEAD" or target == b"/short":
                length = len(body) - 1 if target == b"/short" else len(body)
                extra = b"LEFTOVER of " + target
                writer.write(
                    b"HTTP/1.1 200 OK\r\ncontent-length: %d\r\n\r\n%s%s" % (length, body, extra)
                )
            else:
                writer.write(b"HTTP/1.1 200 OK\r\ncontent-length: %d\r\n\r\n%s" % (len(body), body))
            await writer.drain()


@pytest.mark.parametrize(("method", "first"), [(b"HEAD", b"/alice"), (b"GET", b"/short")])
async def test_bytes_past_an_answer_never_reach_the_next_request(
    method: bytes, first: bytes
) -> None:
    overflowing = _OverflowingServer()
    server = await asyncio.start_server(overflowing.handle, "127.0.0.1", 0)
    upstream = Upstream("127.0.0.1", server.sockets[0].getsockname()[1])
    forwarder = Forwarder()
    try:
        response = await forwarder.request(upstream, method, first, [])
        async with response:
            async for _ in response.stream():
                pass
        # A POST is never retried: on a reused connection it would get the leftover bytes.
        second = await forwarder.request(upstream, b"POST", b"/bob", [(b"content-length", b"0")])
        async with second:
            assert b"".join([chunk async for chunk in second.stream()]) == b"answer to /bob"
        assert overflowing.connections == 2  # the first connection was not pooled
        assert forwarder.active == 0
    finally:
        await forwarder.aclose()
        server.close()
        await server.wait_closed()
        with anyio.fail_after(10):
            await overflowing.all_closed.wait()


async def test_refused_and_silent_apps() -> None:
    forwarder = Forwarder(response_timeout=0.5)
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen()  # the kernel accepts connections; nothing reads them
    upstream = Upstream("127.0.0.1", sock.getsockname()[1])
    try:
        with anyio.fail_after(30), pytest.raises(UpstreamTimeout):
            await forwarder.request(upstream, b"GET", b"/", [])
        sock.close()
        with pytest.raises(UpstreamUnreachable):
            await forwarder.request(upstream, b"GET", b"/", [])
        assert forwarder.active == 0
    finally:
        sock.close()
        await forwarder.aclose()


async def test_through_the_proxy_a_silent_app_is_a_504(apps: Apps) -> None:
    async with httpx.AsyncClient(base_url=apps.proxy_url, timeout=30) as client:
        response = await client.get("/slow")
    assert response.status_code == 504
    assert response.json()["reason"] == "Gateway Timeout"
    with anyio.fail_after(20):
        await anyio.to_thread.run_sync(apps.state.slow_gone.wait, 20)
    await _wait_for(lambda: apps.proxy_forwarder.active == 0, "the connection is freed")


async def test_through_the_proxy_a_chunked_upload_streams(apps: Apps) -> None:
    pieces = 8

    async def upload() -> AsyncIterator[bytes]:
        yield CHUNK
        # The app has the first chunk before the rest is even produced: nothing buffers it.
        assert await anyio.to_thread.run_sync(apps.state.first_upload_chunk.wait, 20)
        for _ in range(pieces - 1):
            yield CHUNK

    async with httpx.AsyncClient(base_url=apps.proxy_url, timeout=30) as client:
        response = await client.post("/upload", content=upload())
        sized = await client.put("/upload", content=CHUNK * 2)
    assert response.status_code == 200
    assert int(response.text) == pieces * len(CHUNK)
    assert len(apps.state.uploads[0]) > 1
    assert int(sized.text) == 2 * len(CHUNK)


async def test_through_the_proxy_a_large_download_streams_in_bounded_memory(apps: Apps) -> None:
    size = 32 << 20
    received = 0
    tracemalloc.start()
    try:
        async with (
            httpx.AsyncClient(base_url=apps.proxy_url, timeout=30) as client,
            client.stream("GET", f"/bytes?n={size}") as response,
        ):
            async for chunk in response.aiter_raw():
                received += len(chunk)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert received == size
    assert peak < 12 << 20, f"{peak} bytes at the peak for a {size}-byte download"
    await _wait_for(lambda: apps.proxy_forwarder.active == 0, "the connection is back")


async def test_through_the_proxy_a_client_gone_mid_download_frees_the_connection(
    apps: Apps,
) -> None:
    async with (
        httpx.AsyncClient(base_url=apps.proxy_url, timeout=30) as client,
        client.stream("GET", "/bytes?n=0") as response,
    ):
        async for _ in response.aiter_raw():
            break
        assert apps.proxy_forwarder.active == 1
    with anyio.fail_after(20):
        assert await anyio.to_thread.run_sync(apps.state.download_gone.wait, 20)
    await _wait_for(lambda: apps.proxy_forwarder.active == 0, "the connection is freed")
    assert apps.proxy_forwarder.idle(apps.tcp) <= 1


async def test_an_answer_before_the_body_was_read_reaches_the_client(apps: Apps) -> None:
    async with httpx.AsyncClient(base_url=apps.proxy_url, timeout=60) as client:
        response = await client.put("/reject", content=CHUNK * 128)
    assert response.status_code == 413
    assert response.text == "too large"
    await _wait_for(lambda: apps.proxy_forwarder.active == 0, "the connection is freed")


async def test_a_header_value_http_can_not_carry_is_refused_before_sending(apps: Apps) -> None:
    forwarder = Forwarder()
    try:
        with pytest.raises(InvalidRequest):
            await forwarder.request(apps.tcp, b"GET", b"/", [(b"x-bad", b"a\r\nb")])
        assert forwarder.opened == 0
    finally:
        await forwarder.aclose()
