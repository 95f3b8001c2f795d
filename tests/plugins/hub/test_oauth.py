"""The Hub's OAuth login in process, against a small Hub API served by uvicorn on loopback.

A flood of unauthenticated ``/oauth_login`` requests keeps nothing on the server, so a real
login still works after it; Junction's own generated token is no credential in hub mode.
"""

from __future__ import annotations

import base64
import hashlib
import secrets
import socket
import threading
import time
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest
import uvicorn
from asgi_lifespan import LifespanManager
from itsdangerous import URLSafeTimedSerializer
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from junction.app import create_app
from junction.services import AUTH
from junction.testing import make_settings

pytestmark = pytest.mark.anyio

HUB_TOKEN = "hub-api-token-for-tests"
ANA_TOKEN = "ana-oauth-token"


class FakeHub:
    """The Hub API endpoints the plugin calls; ``authorize`` stands for the Hub's login page."""

    def __init__(self) -> None:
        self.codes: dict[str, str] = {}
        self.down = False
        """When set, every endpoint answers 503, as a Hub behind its proxy while restarting."""
        self.app = Starlette(
            routes=[
                Route("/hub/api/", self._root),
                Route("/hub/api/oauth2/token", self._token, methods=["POST"]),
                Route("/hub/api/user", self._user),
            ]
        )

    def authorize(self, location: str) -> tuple[str, str]:
        """Approve a login the browser was sent to: the code and state to call back with."""
        query = parse_qs(urlsplit(location).query)
        code = secrets.token_urlsafe(16)
        self.codes[code] = query["code_challenge"][0]
        return code, query["state"][0]

    async def _root(self, request: Request) -> Response:
        if self.down:
            return JSONResponse({}, status_code=503)
        return JSONResponse({}, headers={"x-jupyterhub-version": "5.0.0"})

    async def _token(self, request: Request) -> Response:
        form = await request.form()
        challenge = self.codes.pop(str(form.get("code", "")), None)
        verifier = str(form.get("code_verifier", ""))
        digest = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest())
        if challenge is None or digest.decode().rstrip("=") != challenge:
            return JSONResponse({"error": "invalid_grant"}, status_code=400)
        if form.get("client_secret") != HUB_TOKEN:
            return JSONResponse({"error": "invalid_client"}, status_code=401)
        return JSONResponse({"access_token": ANA_TOKEN, "token_type": "Bearer"})

    async def _user(self, request: Request) -> Response:
        if self.down:
            return JSONResponse({}, status_code=503)
        if request.headers.get("authorization") != f"token {ANA_TOKEN}":
            return JSONResponse({}, status_code=403)
        return JSONResponse({"name": "ana", "kind": "user", "scopes": ["access:servers!user=ana"]})


@pytest.fixture
def hub() -> Iterator[tuple[FakeHub, str]]:
    """A fake Hub on real uvicorn in a thread; yields it and its API URL."""
    fake = FakeHub()
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(fake.app, log_level="warning", lifespan="off"))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        assert thread.is_alive(), "the fake Hub did not start"
        assert time.monotonic() < deadline, "the fake Hub did not start in time"
        time.sleep(0.01)
    try:
        yield fake, f"http://127.0.0.1:{port}/hub/api"
    finally:
        server.should_exit = True
        thread.join(10)
        sock.close()


@asynccontextmanager
async def junction(
    api_url: str, hub: dict[str, Any] | None = None, **overrides: Any
) -> AsyncIterator[tuple[httpx.AsyncClient, Any, Any]]:
    """An in-process server in the hub profile's shape (core + hub plugin): a client, the
    app, and the ASGI callable the client talks to. ``hub`` overrides hub settings."""
    hub_settings = {
        "api_url": api_url,
        "api_token": HUB_TOKEN,
        "user": "ana",
        "oauth_client_id": "jupyterhub-user-ana",
        "access_scopes": ["access:servers!user=ana"],
        "hub_host": "http://127.0.0.1:1",
        "activity_url": "",
        "connect_tries": 1,
        **(hub or {}),
    }
    settings = make_settings(enable=["hub"], plugins={"hub": hub_settings}, **overrides)
    app = create_app(settings)
    async with LifespanManager(app) as manager:
        transport = httpx.ASGITransport(app=manager.app)
        async with httpx.AsyncClient(transport=transport, base_url="http://localhost:8888") as c:
            yield c, app, manager.app


async def anonymous_login(app: Any) -> int:
    """``GET /oauth_login`` straight through the ASGI app, as a browser without cookies;
    much quicker than a request through httpx."""
    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "GET",
        "scheme": "http",
        "path": "/oauth_login",
        "raw_path": b"/oauth_login",
        "root_path": "",
        "query_string": b"",
        "headers": [(b"host", b"localhost:8888")],
        "client": ("127.0.0.1", 50000),
        "server": ("127.0.0.1", 8888),
        "state": {},
    }
    status = 0

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: dict[str, Any]) -> None:
        nonlocal status
        if message["type"] == "http.response.start":
            status = message["status"]

    await app(scope, receive, send)
    return status


async def test_a_flood_of_pending_logins_blocks_no_one(hub: tuple[FakeHub, str]) -> None:
    fake, api_url = hub
    async with junction(api_url) as (client, _, asgi):
        statuses = [await anonymous_login(asgi) for _ in range(10_050)]
        assert set(statuses) == {302}
        start = await client.get("/oauth_login", params={"next": "/api/me"})
        assert start.status_code == 302, start.text
        code, state = fake.authorize(start.headers["location"])
        done = await client.get("/oauth_callback", params={"code": code, "state": state})
        assert done.status_code == 302, done.text
        assert done.headers["location"] == "/api/me"
        me = await client.get("/api/me")
        assert me.status_code == 200, me.text
        assert me.json()["identity"]["username"] == "ana"


async def test_the_state_cookie_is_signed_and_dropped_after_use(
    hub: tuple[FakeHub, str],
) -> None:
    fake, api_url = hub
    async with junction(api_url) as (client, _, _):
        start = await client.get("/oauth_login")
        assert "httponly" in start.headers["set-cookie"].lower()
        code, state = fake.authorize(start.headers["location"])
        ((name, signed),) = client.cookies.items()
        client.cookies.clear()
        signer = URLSafeTimedSerializer("junction-test-cookie-secret", salt="junction-hub-oauth")
        assert signer.loads(signed)["s"] == state

        async def callback(cookie: str, state: str) -> httpx.Response:
            return await client.get(
                "/oauth_callback",
                params={"code": code, "state": state},
                headers={"Cookie": f"{name}={cookie}"},
            )

        assert (await callback(signed[:-3] + "AAA", state)).status_code == 403
        assert (await callback(signed, "x" + state)).status_code == 403
        done = await callback(signed, state)
        assert done.status_code == 302
        dropped = [c for c in done.headers.get_list("set-cookie") if c.startswith(f"{name}=")]
        assert dropped
        assert "max-age=0" in dropped[0].lower()


async def test_the_generated_token_is_no_credential_in_hub_mode(
    hub: tuple[FakeHub, str],
) -> None:
    _, api_url = hub
    settings = make_settings(token=None)
    generated = create_app(settings).state.services.get(AUTH)
    assert generated.token_generated
    async with junction(api_url, token=None) as (client, app, _):
        auth = app.state.services.get(AUTH)
        assert auth.token == ""
        assert not auth.check_token("")
        for credential in ({"token": "anything"}, {}):
            refused = await client.get("/api/me", params=credential)
            assert refused.status_code == 403
        hub_user = await client.get("/api/me", headers={"Authorization": f"token {ANA_TOKEN}"})
        assert hub_user.status_code == 200
    async with junction(api_url) as (client, _, _):  # a token the operator set stays valid
        mine = await client.get("/api/me", params={"token": "junction-test-token"})
        assert mine.status_code == 200


async def test_open_sessions_outlive_a_hub_outage_and_new_logins_get_503(
    hub: tuple[FakeHub, str],
) -> None:
    fake, api_url = hub
    async with junction(api_url, hub={"cache_max_age": 0}) as (client, _, _):
        start = await client.get("/oauth_login", params={"next": "/api/me"})
        code, state = fake.authorize(start.headers["location"])
        done = await client.get("/oauth_callback", params={"code": code, "state": state})
        assert done.status_code == 302, done.text
        fake.down = True
        me = await client.get("/api/me")
        assert me.status_code == 200, me.text
        assert me.json()["identity"]["username"] == "ana"
        client.cookies.clear()
        stranger = await client.get("/api/me", headers={"Authorization": "token unknown"})
        assert stranger.status_code == 403
        again = await client.get("/oauth_login")
        assert again.status_code == 503
        assert "JupyterHub cannot be reached" in again.json()["message"]
