"""``text/plain`` and unlabelled bodies read as JSON on the Jupyter APIs only: requests that
``/proxy/{port}/`` passes on reach the upstream with the type the client sent."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import anyio
import pytest
from starlette.types import Receive, Scope, Send

from junction.middleware import PlainTextJSONMiddleware
from junction.testing import app_client

pytestmark = pytest.mark.anyio


@asynccontextmanager
async def _upstream() -> AsyncIterator[tuple[int, list[bytes]]]:
    """A raw HTTP server on loopback that records each request's head and answers 200."""
    heads: list[bytes] = []

    async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            head = await reader.readuntil(b"\r\n\r\n")
            heads.append(head)
            for line in head.split(b"\r\n"):
                name, _, value = line.partition(b":")
                if name.strip().lower() == b"content-length":
                    await reader.readexactly(int(value))
            writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok")
            await writer.drain()
        finally:
            writer.close()

    server = await asyncio.start_server(serve, "127.0.0.1", 0)
    try:
        yield server.sockets[0].getsockname()[1], heads
    finally:
        server.close()
        with anyio.fail_after(10):
            await server.wait_closed()


def _content_types(head: bytes) -> list[bytes]:
    lines = head.lower().split(b"\r\n")[1:]
    return [line.partition(b":")[2].strip() for line in lines if line.startswith(b"content-type:")]


async def test_the_port_proxy_forwards_the_content_type_as_sent(tmp_path: Path) -> None:
    async with (
        _upstream() as (port, heads),
        app_client(
            root_dir=tmp_path,
            enable=["apps"],
            database_url=f"sqlite+aiosqlite:///{tmp_path / 'junction.db'}",
        ) as client,
    ):
        sent = [
            ("POST", {"Content-Type": "text/plain;charset=UTF-8"}, [b"text/plain;charset=utf-8"]),
            ("PUT", {"Content-Type": "text/plain"}, [b"text/plain"]),
            ("POST", {}, []),
            ("DELETE", {}, []),
        ]
        for method, headers, expected in sent:
            answer = await client.request(
                method, f"/proxy/{port}/form", content=b"a=1", headers=headers
            )
            assert (answer.status_code, answer.text) == (200, "ok")
            assert _content_types(heads[-1]) == expected, (method, heads[-1])
        assert len(heads) == len(sent)

        # The Jupyter API still reads a text/plain body as JSON (and here names its field).
        refused = await client.post(
            "/api/apps",
            content=b'{"command": ["python", "-m", "http.server"]}',
            headers={"Content-Type": "text/plain;charset=UTF-8"},
        )
        assert refused.status_code == 400, refused.text
        assert "must use '{port}'" in refused.json()["message"]


async def _seen(app: PlainTextJSONMiddleware, path: str, content_type: bytes | None) -> bytes:
    """The Content-Type the inner app sees for a POST to ``path``."""
    seen: list[bytes] = []

    async def inner(scope: Scope, receive: Receive, send: Send) -> None:
        seen.extend(v for k, v in scope["headers"] if k == b"content-type")

    app.app = inner
    headers = [] if content_type is None else [(b"content-type", content_type)]
    scope = {"type": "http", "method": "POST", "path": path, "headers": headers}
    await app(scope, _no_receive, _no_send)
    return seen[0] if seen else b""


async def _no_receive() -> dict[str, object]:
    raise AssertionError("the middleware reads no body")


async def _no_send(message: object) -> None:
    raise AssertionError("the middleware sends nothing")


@pytest.mark.parametrize(
    ("path", "content_type", "seen"),
    [
        ("/x/api/contents/a", b"text/plain;charset=UTF-8", b"application/json"),
        ("/x/api/sessions", None, b"application/json"),
        ("/x/lab/api/settings/p", b"text/plain", b"application/json"),
        ("/x/nbconvert/html", b"text/plain", b"application/json"),
        (
            "/x/api/contents/a",
            b"multipart/form-data; boundary=b",
            b"multipart/form-data; boundary=b",
        ),
        ("/x/proxy/8000/api/x", b"text/plain", b"text/plain"),
        ("/x/proxy/8000/", None, b""),
        ("/api/contents/a", b"text/plain", b"text/plain"),
        ("/x/apis", b"text/plain", b"text/plain"),
        ("/x/login", None, b""),
    ],
)
async def test_only_jupyter_api_bodies_are_relabelled(
    path: str, content_type: bytes | None, seen: bytes
) -> None:
    app = PlainTextJSONMiddleware(_no_send, base_url="/x/")  # type: ignore[arg-type]
    assert await _seen(app, path, content_type) == seen
