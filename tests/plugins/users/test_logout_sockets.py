"""Logging out closes the WebSockets the session opened, at once and without the generation
poll, on a real uvicorn server; another session of the same user keeps its own."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from websockets.asyncio.client import connect

from junction.auth.sockets import REVOKED_CLOSE_CODE
from junction.testing import TEST_TOKEN, close_code, serve_in_thread, terminal_echo

pytestmark = pytest.mark.anyio

ADMIN = {"Authorization": f"token {TEST_TOKEN}"}


@pytest.fixture
def server(tmp_path: Path) -> Iterator[str]:
    """A multi-user server with terminals whose generation poll is off; its base URL."""
    with serve_in_thread(
        root_dir=tmp_path,
        enable=["users", "terminals"],
        database_url=f"sqlite+aiosqlite:///{tmp_path / 'junction.db'}",
        plugin_settings={
            "users": {"revocation_poll_seconds": 0},
            "terminals": {"shell_command": ["/bin/sh"]},
        },
    ) as (url, _):
        yield url


async def _log_in(browser: httpx.AsyncClient, name: str, password: str) -> None:
    """Log ``browser`` in as ``name`` (session and XSRF cookies)."""
    page = await browser.get("/login")
    assert page.status_code == 200, page.text
    done = await browser.post(
        "/login",
        data={"username": name, "password": password, "_xsrf": browser.cookies["_xsrf"]},
    )
    assert done.status_code == 302, done.text


def _terminal_socket(url: str, browser: httpx.AsyncClient, terminal: str) -> connect:
    """Open ``terminal``'s WebSocket with the browser's cookies, from the server's origin."""
    cookies = "; ".join(f"{k}={v}" for k, v in browser.cookies.items())
    origin = url.split("/", 3)[:3]
    return connect(
        url.replace("http", "ws", 1) + f"terminals/websocket/{terminal}",
        additional_headers={"Cookie": cookies},
        origin="/".join(origin),  # type: ignore[arg-type]  # a plain URL string
    )


async def test_logging_out_closes_the_sessions_websockets_without_the_poll(server: str) -> None:
    made = httpx.post(
        f"{server}api/users", json={"name": "ana", "password": "s3cret-pw"}, headers=ADMIN
    )
    assert made.status_code == 201, made.text
    async with (
        httpx.AsyncClient(base_url=server, timeout=30) as first,
        httpx.AsyncClient(base_url=server, timeout=30) as second,
    ):
        await _log_in(first, "ana", "s3cret-pw")
        await _log_in(second, "ana", "s3cret-pw")
        started = await first.post(
            "/api/terminals", headers={"X-XSRFToken": first.cookies["_xsrf"]}
        )
        assert started.status_code == 200, started.text
        terminal = started.json()["name"]
        async with (
            _terminal_socket(server, first, terminal) as leaving,
            _terminal_socket(server, second, terminal) as staying,
        ):
            await terminal_echo(leaving, "before-logout")
            await terminal_echo(staying, "before-logout")
            out = await first.post("/logout", data={"_xsrf": first.cookies["_xsrf"]})
            assert out.status_code in (200, 302, 303), out.text
            assert await close_code(leaving, 10) == REVOKED_CLOSE_CODE
            await terminal_echo(staying, "after-logout")  # the other session's socket stays open
        assert (await first.get("/api/me")).status_code in (401, 403)
        assert (await second.get("/api/me")).status_code == 200
