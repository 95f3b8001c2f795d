"""``users.identity = "hub"`` with the ``hubservice`` plugin, in process: the users plugin's
logins through a Hub's OAuth, against a small Hub API served by uvicorn on loopback.

Accounts, group-to-role mapping, Hub admins, the login page forwarding, rechecks when the
Hub revokes a token or goes away, logout continuing at the Hub, and the startup check of the
``JUPYTERHUB_*`` variables.
"""

from __future__ import annotations

import base64
import hashlib
import json
import secrets
import socket
import threading
import time
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import anyio
import httpx
import pytest
import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from junction.auth.routes import LoginForward
from junction.errors import ConfigError
from junction.services import IDENTITY
from junction.testing import app_client

pytestmark = pytest.mark.anyio

SERVICE_TOKEN = "service-api-token"
ACCESS = "access:services!service=junction"


class FakeHub:
    """The Hub API endpoints a service calls; ``approve`` stands for the Hub's login page."""

    def __init__(self) -> None:
        self.users: dict[str, dict[str, Any]] = {}
        self.codes: dict[str, tuple[str, str]] = {}
        self.tokens: dict[str, str] = {}
        self.seen_versions: list[str] = []
        self.app = Starlette(
            routes=[
                Route("/hub/api/", self._root),
                Route("/hub/api/oauth2/token", self._token, methods=["POST"]),
                Route("/hub/api/user", self._user),
            ]
        )

    def add(
        self, name: str, *, groups: list[str], admin: bool = False, access: bool = True
    ) -> None:
        """A Hub user; ``access``: whether they hold the service's access scope."""
        self.users[name] = {"name": name, "kind": "user", "admin": admin, "groups": groups}
        self.users[name]["scopes"] = [f"read:users:name!user={name}"] + ([ACCESS] * access)

    def approve(self, location: str, name: str) -> tuple[str, str]:
        """The Hub approves ``name``'s login: the code and state to call back with."""
        query = parse_qs(urlsplit(location).query)
        code = secrets.token_urlsafe(16)
        self.codes[code] = (query["code_challenge"][0], name)
        return code, query["state"][0]

    async def _root(self, request: Request) -> Response:
        return JSONResponse({"version": "6.1.1"}, headers={"x-jupyterhub-version": "6.1.1"})

    async def _token(self, request: Request) -> Response:
        form = await request.form()
        challenge, name = self.codes.pop(str(form.get("code", "")), ("", ""))
        verifier = str(form.get("code_verifier", ""))
        digest = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest())
        if not name or digest.decode().rstrip("=") != challenge:
            return JSONResponse({"error": "invalid_grant"}, status_code=400)
        if form.get("client_secret") != SERVICE_TOKEN:
            return JSONResponse({"error": "invalid_client"}, status_code=401)
        token = secrets.token_hex(16)
        self.tokens[token] = name
        return JSONResponse({"access_token": token, "token_type": "Bearer"})

    async def _user(self, request: Request) -> Response:
        self.seen_versions.append(request.headers.get("x-jupyterhub-version", ""))
        token = request.headers.get("authorization", "").removeprefix("token ")
        name = self.tokens.get(token)
        if name is None:
            return JSONResponse({}, status_code=403)
        return JSONResponse(self.users[name])


@pytest.fixture
def hub() -> Iterator[tuple[FakeHub, uvicorn.Server, int]]:
    """A fake Hub on real uvicorn in a thread: the fake, its server and port."""
    fake = FakeHub()
    fake.add("ana", groups=["class"])
    fake.add("dan", groups=["class", "staff"])
    fake.add("root", groups=[], admin=True)
    fake.add("eve", groups=["class"], access=False)
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
        yield fake, server, port
    finally:
        server.should_exit = True
        thread.join(10)
        sock.close()


def _hub_env(monkeypatch: pytest.MonkeyPatch, port: int) -> None:
    monkeypatch.setenv("JUPYTERHUB_API_URL", f"http://127.0.0.1:{port}/hub/api")
    monkeypatch.setenv("JUPYTERHUB_API_TOKEN", SERVICE_TOKEN)
    monkeypatch.setenv("JUPYTERHUB_CLIENT_ID", "service-junction")
    monkeypatch.setenv("JUPYTERHUB_BASE_URL", "/")
    monkeypatch.setenv("JUPYTERHUB_OAUTH_CALLBACK_URL", "/oauth_callback")
    monkeypatch.setenv("JUPYTERHUB_OAUTH_ACCESS_SCOPES", json.dumps([ACCESS]))


@asynccontextmanager
async def service(tmp_path: Path, **users: Any) -> AsyncIterator[Any]:
    """An in-process multi-user server whose logins come from the Hub."""
    settings = {
        "identity": "hub",
        "hub_admin_groups": ["staff"],
        "hub_group_roles": {"staff": ["admin"], "class": ["viewer"]},
        **users,
    }
    async with app_client(
        enable=["hubservice", "users"],
        database_url=f"sqlite+aiosqlite:///{tmp_path}/users.sqlite",
        plugin_settings={"users": settings},
        authenticated=False,
    ) as client:
        yield client


async def _log_in(client: httpx.AsyncClient, fake: FakeHub, name: str) -> httpx.Response:
    start = await client.get("/login/hub", params={"next": "/api/me"})
    assert start.status_code == 302, start.text
    assert start.headers["location"].startswith("/hub/api/oauth2/authorize?")
    code, state = fake.approve(start.headers["location"], name)
    return await client.get("/oauth_callback", params={"code": code, "state": state})


async def test_hub_groups_become_roles_and_admins(
    hub: tuple[FakeHub, uvicorn.Server, int], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    fake, _, port = hub
    _hub_env(monkeypatch, port)
    async with service(tmp_path, hub_admins=True) as client:
        done = await _log_in(client, fake, "dan")
        assert done.status_code == 302, done.text
        assert done.headers["location"] == "/api/me"
        me = (await client.get("/api/me")).json()["identity"]
        assert me["username"] == "dan"
        assert me["admin"] is True
        assert me["roles"] == ["user", "viewer", "admin"]
        assert me["groups"] == ["class", "staff"]
        client.cookies.clear()

        assert (await _log_in(client, fake, "ana")).status_code == 302
        me = (await client.get("/api/me")).json()["identity"]
        assert (me["admin"], me["roles"]) == (False, ["user", "viewer"])
        client.cookies.clear()

        assert (await _log_in(client, fake, "root")).status_code == 302
        me = (await client.get("/api/me")).json()["identity"]
        assert (me["username"], me["admin"]) == ("root", True)
        assert "6.1.1" in fake.seen_versions


async def test_without_access_or_outside_allowed_groups_login_is_refused(
    hub: tuple[FakeHub, uvicorn.Server, int], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    fake, _, port = hub
    _hub_env(monkeypatch, port)
    async with service(tmp_path, allowed_groups=["staff"]) as client:
        eve = await _log_in(client, fake, "eve")
        assert eve.status_code == 403
        assert eve.json()["message"] == "eve may not use this server (no access scope)"
        ana = await _log_in(client, fake, "ana")
        assert ana.status_code == 403
        assert ana.json() == {"message": "ana may not use this server", "reason": "LoginRefused"}
        assert (await client.get("/api/me")).status_code == 403
        assert (await _log_in(client, fake, "dan")).status_code == 302


async def test_the_login_page_forwards_to_the_hub_without_passwords(
    hub: tuple[FakeHub, uvicorn.Server, int], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _, _, port = hub
    _hub_env(monkeypatch, port)
    async with service(tmp_path, password_login=False) as client:
        identity = client.app.state.services.get(IDENTITY)
        assert isinstance(identity, LoginForward)
        forward = await client.get("/login", params={"next": "/lab"})
        assert forward.status_code == 302
        assert forward.headers["location"] == "/login/hub?next=%2Flab"
    async with service(tmp_path) as client:
        page = await client.get("/login")
        assert page.status_code == 200
        assert 'href="/login/hub?next=%2F"' in page.text
        assert "Log in with JupyterHub" in page.text


async def test_sessions_end_when_the_hub_revokes_and_outlive_a_hub_outage(
    hub: tuple[FakeHub, uvicorn.Server, int], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    fake, server, port = hub
    _hub_env(monkeypatch, port)
    recheck = {"cache_seconds": 0, "oidc_recheck_seconds": 0}
    async with service(tmp_path, **recheck) as client:
        assert (await _log_in(client, fake, "ana")).status_code == 302
        assert (await client.get("/api/me")).status_code == 200
        fake.tokens.clear()  # the Hub revoked the token (the user logged out at the Hub)
        assert (await client.get("/api/me")).status_code == 403
        client.cookies.clear()

        assert (await _log_in(client, fake, "dan")).status_code == 302
        server.should_exit = True  # the Hub goes away
        await _wait_until_down(port)
        me = await client.get("/api/me")
        assert me.status_code == 200, me.text
        assert me.json()["identity"]["username"] == "dan"
        again = await client.get("/login/hub")
        assert again.status_code == 503
        assert "JupyterHub cannot be reached" in again.json()["message"]
        out = await client.get("/logout", headers={"Sec-Fetch-Site": "same-origin"})
        assert out.status_code == 302
        assert out.headers["location"] == "/hub/logout"


async def _wait_until_down(port: int) -> None:
    """Wait (10 s at most) until nothing answers on ``port``."""
    with anyio.fail_after(10):
        while True:
            try:
                async with httpx.AsyncClient() as probe:
                    await probe.get(f"http://127.0.0.1:{port}/hub/api/")
            except httpx.ConnectError:
                return
            except httpx.TransportError:
                pass  # a server shutting down drops the connection before it stops listening
            await anyio.sleep(0.05)


async def test_hub_identity_needs_the_hub_variables(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name in ("JUPYTERHUB_API_URL", "JUPYTERHUB_API_TOKEN", "JPY_API_TOKEN"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("JUPYTERHUB_CLIENT_ID", "service-junction")
    monkeypatch.setenv("JUPYTERHUB_OAUTH_ACCESS_SCOPES", json.dumps([ACCESS]))
    needs = "hubservice needs JUPYTERHUB_API_URL, JUPYTERHUB_API_TOKEN"
    with pytest.RaisesGroup(pytest.RaisesExc(ConfigError, match=needs), flatten_subgroups=True):
        async with service(tmp_path):
            pass


async def test_hub_identity_needs_the_hubservice_plugin(tmp_path: Path) -> None:
    needs = r'add enable = \["hubservice"\]'
    with pytest.RaisesGroup(pytest.RaisesExc(ConfigError, match=needs), flatten_subgroups=True):
        async with app_client(
            enable=["users"],
            database_url=f"sqlite+aiosqlite:///{tmp_path}/users.sqlite",
            plugin_settings={"users": {"identity": "hub"}},
        ):
            pass
