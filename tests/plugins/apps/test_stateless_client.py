"""The probes' HTTP client keeps no cookies: one app's Set-Cookie never reaches another."""

from __future__ import annotations

import httpx
import pytest
from starlette.types import Receive, Scope, Send

from junction.plugins.apps.manager import stateless_client

pytestmark = pytest.mark.anyio


async def echo_cookie(scope: Scope, receive: Receive, send: Send) -> None:
    """Sets a cookie on every response and answers with the Cookie header it received."""
    cookie = dict(scope["headers"]).get(b"cookie", b"")
    headers = [(b"set-cookie", b"app_session=private; Path=/")]
    await send({"type": "http.response.start", "status": 200, "headers": headers})
    await send({"type": "http.response.body", "body": cookie})


async def test_a_cookie_an_app_sets_is_never_sent_again() -> None:
    client = stateless_client(httpx.ASGITransport(app=echo_cookie))
    async with client:
        first = await client.get("http://127.0.0.1:5001/")
        second = await client.get("http://127.0.0.1:5002/")
        again = await client.get("http://127.0.0.1:5001/")
    assert first.headers["set-cookie"].startswith("app_session=")
    assert second.text == ""
    assert again.text == ""
    assert len(client.cookies.jar) == 0
