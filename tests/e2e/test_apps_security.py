"""The apps plugin's security boundaries over a real server started with ``--port 0``.

Junction's own ports are never proxied, Junction's URL never comes from a request's ``Host``,
no credential Junction accepts reaches an app in any spelling, and an app cannot toss cookies
onto a parent domain or be driven by another site's WebSocket.
"""

from __future__ import annotations

import json
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import anyio
import httpx
import pytest
import websockets
from websockets.asyncio.client import connect

from junction.testing import TEST_TOKEN, ServerProcess, free_port

pytestmark = [pytest.mark.e2e]

AUTH = {"Authorization": f"token {TEST_TOKEN}"}
ECHO = str(Path(__file__).parents[1] / "apps" / "echo_app.py")


class Server:
    """A junction on a port the OS picked, with the apps listener on a known one."""

    def __init__(self, process: ServerProcess, apps_port: int) -> None:
        self.url = process.url
        self.port = urlsplit(process.url).port
        self.apps_port = apps_port

    def echo_app(self) -> dict[str, Any]:
        """Create the header-echo app and wait until it is ready."""
        created = httpx.post(
            self.url + "api/apps", json={"command": [sys.executable, ECHO, "{port}"]}, headers=AUTH
        )
        assert created.status_code == 201, created.text
        app_id = created.json()["id"]
        end = time.monotonic() + 60
        while time.monotonic() < end:
            model: dict[str, Any] = httpx.get(self.url + f"api/apps/{app_id}", headers=AUTH).json()
            if model["status"] != "starting":
                assert model["status"] == "ready", model
                return model
            time.sleep(0.1)
        raise AssertionError(f"app {app_id} still starting after 60 s")

    def host(self, app_id: str) -> str:
        """The Host header browsers send to this app."""
        return f"{app_id}.apps.localhost:{self.apps_port}"

    def app_get(self, app_id: str, path: str, **kwargs: Any) -> httpx.Response:
        """A request to the app host, as a browser would send it."""
        headers = {"Host": self.host(app_id), **kwargs.pop("headers", {})}
        return httpx.get(f"http://127.0.0.1:{self.apps_port}{path}", headers=headers, **kwargs)

    def login(self, app_id: str) -> str:
        """The app cookie, through Junction's /apps/{id}/ and the code exchange."""
        first = httpx.get(self.url + f"apps/{app_id}/", headers=AUTH)
        assert first.status_code == 302, first.text
        location = urlsplit(first.headers["location"])
        second = self.app_get(app_id, f"{location.path}?{location.query}")
        assert second.status_code == 302, second.text
        return second.headers["set-cookie"].split(";")[0]


@contextmanager
def server_on_port_0(root: Path, *settings: str) -> Iterator[Server]:
    """A junction with only the apps plugin, listening on a port picked at startup."""
    apps_port = free_port()
    args = ["--profile", "none", "--enable", "apps", "--port", "0", "--ip", "127.0.0.1"]
    args += ["--root-dir", str(root), "--set", f"apps.port={apps_port}"]
    args += ["--set", f"database_url=sqlite+aiosqlite:///{root}/junction.db"]
    for setting in settings:
        args += ["--set", setting]
    with ServerProcess(args, log_path=root / "server.log") as process:
        yield Server(process, apps_port)


def test_junctions_own_bound_ports_are_not_proxied(tmp_path: Path) -> None:
    with server_on_port_0(tmp_path) as server:
        for port in (server.port, server.apps_port):
            refused = httpx.get(server.url + f"proxy/{port}/api/status", headers=AUTH)
            assert refused.status_code == 403, (port, refused.text)
            assert refused.json()["message"] == f"port {port} may not be proxied"


def test_a_forged_host_never_becomes_junctions_url(tmp_path: Path) -> None:
    with server_on_port_0(tmp_path, "allow_remote_access=true") as server:
        forged = httpx.get(server.url + "api/apps", headers={**AUTH, "Host": "evil.example"})
        assert forged.status_code == 200
        app = server.echo_app()
        junction = f"http://localhost:{server.port}/"
        assert app["url"] == f"{junction}apps/{app['id']}/"
        login = server.app_get(app["id"], "/some/page")
        assert login.status_code == 302
        assert login.headers["location"] == f"{junction}apps/{app['id']}/some/page"
        expired = server.app_get(app["id"], "/_junction/auth?code=bad")
        assert expired.status_code == 403
        assert "evil.example" not in expired.text
        assert f'href="{junction}apps/{app["id"]}/"' in expired.text


def test_no_credential_reaches_an_app_in_any_spelling(tmp_path: Path) -> None:
    with server_on_port_0(tmp_path) as server:
        app = server.echo_app()
        cookie = server.login(app["id"])
        seen = server.app_get(
            app["id"],
            f"/headers?a=1&%74oken={TEST_TOKEN}&TOKEN={TEST_TOKEN}",
            headers={
                "Cookie": f"{cookie}; _xsrf=2|abc; __Host-junction-app=x; mine=1",
                "Authorization": f"token\t{TEST_TOKEN}",
                "X-Forwarded_User": "admin",
                "Remote_User": "admin",
                "X_Forwarded_For": "10.9.9.9",
            },
        )
        assert seen.status_code == 200, seen.text
        body = seen.json()
        headers = dict(body["headers"])
        assert TEST_TOKEN not in json.dumps(body)
        assert body["query"] == "a=1"
        assert "authorization" not in headers
        assert headers["cookie"] == "mine=1"
        assert not [name for name in headers if "_" in name]
        assert headers["x-forwarded-for"] == "127.0.0.1"

        # any scheme word: a Junction token is never an app's credential
        basic = server.app_get(
            app["id"],
            "/headers",
            headers={"Cookie": cookie, "Authorization": f"Basic {TEST_TOKEN}"},
        )
        assert TEST_TOKEN not in basic.text

        # the one-time-code redirect's next
        handover = httpx.get(
            server.url + f"apps/{app['id']}/headers?b=2&%74oken={TEST_TOKEN}", headers=AUTH
        )
        assert handover.status_code == 302
        next_path = parse_qs(urlsplit(handover.headers["location"]).query)["next"][0]
        assert next_path == "/headers?b=2"


def test_an_app_cannot_set_a_cookie_for_a_parent_domain(tmp_path: Path) -> None:
    with server_on_port_0(tmp_path) as server:
        app = server.echo_app()
        cookie = server.login(app["id"])
        own_host = f"{app['id']}.apps.localhost"
        for name, kept in [
            ("tossed=evil; Domain=localhost; Path=/; a", False),
            ("tossed=evil; Domain=.apps.localhost; a", False),
            (f"own=1; Domain={own_host}; a", True),
            ("hostonly=1; Path=/; a", True),
        ]:
            response = server.app_get(
                app["id"], "/set-cookies", params={"name": name}, headers={"Cookie": cookie}
            )
            assert response.status_code == 200
            passed = [c for c in response.headers.get_list("set-cookie") if c.endswith("a=x")]
            assert bool(passed) is kept, (name, passed)


def test_app_websockets_accept_only_the_apps_own_origin(tmp_path: Path) -> None:
    with server_on_port_0(tmp_path) as server:
        app = server.echo_app()
        cookie = server.login(app["id"])
        host = server.host(app["id"])

        async def handshake(origin: str) -> int:
            try:
                async with connect(
                    f"ws://{host}/ws",
                    host="127.0.0.1",
                    port=server.apps_port,
                    origin=websockets.typing.Origin(origin),
                    additional_headers={"Cookie": cookie},
                ):
                    return 101
            except websockets.InvalidStatus as refused:
                return refused.response.status_code

        assert anyio.run(handshake, "http://evil.example") == 403
        other = f"http://other1.apps.localhost:{server.apps_port}"
        assert anyio.run(handshake, other) == 403
        assert anyio.run(handshake, f"http://{host}") == 101
