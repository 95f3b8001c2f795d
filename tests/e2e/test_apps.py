"""The apps plugin over a real server: real app processes, the apps listener, the proxy.

Apps are reached on ``{id}.apps.localhost:{port}``; these clients connect to 127.0.0.1 and
send that Host, as a browser resolving ``*.localhost`` to loopback would.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import anyio
import httpx
import psutil
import pytest
import websockets
from websockets.asyncio.client import connect

from junction.testing import TEST_TOKEN, ServerProcess, free_port

pytestmark = [pytest.mark.e2e]

AUTH = {"Authorization": f"token {TEST_TOKEN}"}
ECHO = str(Path(__file__).parents[1] / "apps" / "echo_app.py")


class AppsServer:
    """A junction process with the apps plugin, and helpers to use its apps."""

    def __init__(self, process: ServerProcess, apps_port: int) -> None:
        self.process = process
        self.url = process.url
        self.apps_port = apps_port

    def create(self, body: dict[str, Any]) -> dict[str, Any]:
        """POST /api/apps; returns the model (asserts 201)."""
        response = httpx.post(self.url + "api/apps", json=body, headers=AUTH)
        assert response.status_code == 201, response.text
        result: dict[str, Any] = response.json()
        return result

    def wait_settled(self, app_id: str, timeout: float = 60) -> dict[str, Any]:
        """Poll the app until it is no longer starting."""
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            model: dict[str, Any] = httpx.get(self.url + f"api/apps/{app_id}", headers=AUTH).json()
            if model["status"] != "starting":
                return model
            time.sleep(0.1)
        raise AssertionError(f"app {app_id} still starting after {timeout} s")

    def host(self, app_id: str) -> str:
        """The Host header browsers send to this app."""
        return f"{app_id}.apps.localhost:{self.apps_port}"

    def app_get(self, app_id: str, path: str, **kwargs: Any) -> httpx.Response:
        """A request to the app host, as a browser would send it."""
        headers = {"Host": self.host(app_id), **kwargs.pop("headers", {})}
        return httpx.get(f"http://127.0.0.1:{self.apps_port}{path}", headers=headers, **kwargs)

    def login(self, app_id: str, path: str = "/") -> str:
        """Go through Junction's /apps/{id}/ and the code exchange; returns the app cookie."""
        first = httpx.get(self.url + f"apps/{app_id}{path}", headers=AUTH)
        assert first.status_code == 302, first.text
        location = urlsplit(first.headers["location"])
        assert location.netloc == self.host(app_id)
        second = self.app_get(app_id, f"{location.path}?{location.query}")
        assert second.status_code == 302, second.text
        cookie = second.headers["set-cookie"]
        assert "HttpOnly" in cookie
        assert "domain" not in cookie.lower()
        return cookie.split(";")[0]


@contextmanager
def apps_server(root: Path, *settings: str) -> Iterator[AppsServer]:
    """A junction with only the apps plugin, its own database and fixed ports."""
    apps_port = free_port()
    args = ["--profile", "none", "--enable", "apps", "--port", str(free_port())]
    args += ["--root-dir", str(root), "--set", f"apps.port={apps_port}"]
    args += ["--set", f"database_url=sqlite+aiosqlite:///{root}/junction.db"]
    for setting in settings:
        args += ["--set", setting]
    with ServerProcess(args, log_path=root / "server.log") as process:
        yield AppsServer(process, apps_port)


def echo_app(server: AppsServer, **extra: Any) -> dict[str, Any]:
    """Create the header-echo app and wait until it is ready."""
    model = server.create({"command": [sys.executable, ECHO, "{port}"], **extra})
    ready = server.wait_settled(model["id"])
    assert ready["status"] == "ready", ready
    return ready


def app_processes(marker: str) -> list[psutil.Process]:
    """Live processes whose command line contains ``marker``."""
    found = []
    for process in psutil.process_iter(["cmdline", "status"]):
        cmdline = " ".join(process.info["cmdline"] or [])
        if marker in cmdline and process.info["status"] != psutil.STATUS_ZOMBIE:
            found.append(process)
    return found


def test_no_junction_credential_reaches_the_app(tmp_path: Path) -> None:
    with apps_server(tmp_path) as server:
        app = echo_app(server)
        assert app["url"].endswith(f"/apps/{app['id']}/")
        cookie = server.login(app["id"], "/headers")
        junction_cookie = "junction-auth-0123abcd=forged.value"
        sent_cookie = f'{junction_cookie}; _streamlit_xsrf=2|ab%3D|"q"==; {cookie}; other=1'
        response = server.app_get(
            app["id"],
            "/headers?x=1&token=" + TEST_TOKEN,
            headers={
                "Cookie": sent_cookie,
                "Authorization": f"token {TEST_TOKEN}",
                "X-Forwarded-User": "mallory",
                "X-Real-IP": "10.0.0.1",
            },
        )
        assert response.status_code == 200, response.text
        seen = response.json()
        headers = dict(seen["headers"])
        assert TEST_TOKEN not in json.dumps(seen)
        assert "authorization" not in headers
        assert headers["cookie"] == '_streamlit_xsrf=2|ab%3D|"q"==; other=1'

        assert seen["query"] == "x=1"
        assert headers["host"] == server.host(app["id"])
        assert headers["x-forwarded-host"] == server.host(app["id"])
        assert headers["x-forwarded-proto"] == "http"
        assert headers["x-forwarded-for"] == "127.0.0.1"
        assert headers["x-forwarded-prefix"] == "/"
        assert headers["x-forwarded-user"] != "mallory"
        assert "x-real-ip" not in headers


def test_an_app_cannot_set_junction_cookies(tmp_path: Path) -> None:
    with apps_server(tmp_path) as server:
        app = echo_app(server)
        cookie = server.login(app["id"])
        response = server.app_get(
            app["id"], "/set-cookies?name=junction-auth-0123abcd", headers={"Cookie": cookie}
        )
        assert response.status_code == 200
        set_cookies = response.headers.get_list("set-cookie")
        assert set_cookies == ["app_cookie=keep; Path=/"]


def test_one_time_codes_and_unauthenticated_requests(tmp_path: Path) -> None:
    with apps_server(tmp_path) as server:
        first = echo_app(server)
        second = echo_app(server)

        def new_code() -> str:
            redirect = httpx.get(server.url + f"apps/{first['id']}/", headers=AUTH)
            location = urlsplit(redirect.headers["location"])
            return f"{location.path}?{location.query}"

        # a code for one app is refused on another app's host, and burned there
        exchange = new_code()
        assert server.app_get(second["id"], exchange).status_code == 403
        assert server.app_get(first["id"], exchange).status_code == 403
        exchange = new_code()
        assert server.app_get(first["id"], exchange).status_code == 302
        # used once: refused the second time
        assert server.app_get(first["id"], exchange).status_code == 403
        # without a cookie: pages go to Junction, which logs in and comes back with a code
        page = server.app_get(first["id"], "/some/page?q=1")
        assert page.status_code == 302
        junction = urlsplit(server.url)
        assert page.headers["location"] == (
            f"http://localhost:{junction.port}/apps/{first['id']}/some/page?q=1"
        )
        assert (
            server.app_get(first["id"], "/", headers={"Cookie": "junction-app=guess"}).status_code
            == 302
        )
        # an unknown host is nobody's app
        assert server.app_get("nothere1", "/").status_code == 404
        # without Junction credentials /apps/{id}/ itself asks to log in
        anonymous = httpx.get(server.url + f"apps/{first['id']}/", headers={"Accept": "text/html"})
        assert anonymous.status_code == 302
        assert "/login" in anonymous.headers["location"]

        async def websocket_refused() -> int:
            try:
                async with connect(
                    f"ws://{server.host(first['id'])}/ws", host="127.0.0.1", port=server.apps_port
                ):
                    return 101
            except websockets.InvalidStatus as refused:
                return refused.response.status_code

        assert anyio.run(websocket_refused) == 403


def test_websocket_echo_with_subprotocols_and_a_5_mb_message(tmp_path: Path) -> None:
    with apps_server(tmp_path) as server:
        app = echo_app(server)
        cookie = server.login(app["id"])

        async def exchange() -> None:
            async with connect(
                f"ws://{server.host(app['id'])}/ws",
                host="127.0.0.1",
                port=server.apps_port,
                subprotocols=["bokeh", "token.abc"],  # type: ignore[list-item]
                additional_headers={"Cookie": cookie},
                origin=f"http://{server.host(app['id'])}",  # type: ignore[arg-type]
                max_size=16 << 20,
            ) as ws:
                assert ws.subprotocol == "token.abc"
                hello = json.loads(await ws.recv())
                assert hello == {"subprotocol": "token.abc", "offered": ["bokeh", "token.abc"]}
                payload = os.urandom(5 << 20)
                await ws.send(payload)
                echoed = await ws.recv()
                assert isinstance(echoed, bytes)
                assert echoed == payload
                await ws.send("text stays text")
                assert await ws.recv() == "text stays text"

        anyio.run(exchange)


def test_a_command_that_exits_at_once_fails_with_its_output(tmp_path: Path) -> None:
    with apps_server(tmp_path) as server:
        script = "import sys; print('boom: no such module', flush=True); sys.exit(3)"
        model = server.create({"command": [sys.executable, "-c", script, "{port}"]})
        failed = server.wait_settled(model["id"])
        assert failed["status"] == "failed"
        assert "exited with code 3" in failed["reason"]
        assert "boom: no such module" in failed["last_log"]
        cookie = server.login(model["id"])
        page = server.app_get(model["id"], "/", headers={"Cookie": cookie})
        assert page.status_code == 502
        assert "boom: no such module" in page.text


def test_an_app_that_never_becomes_ready_fails_and_its_group_is_killed(tmp_path: Path) -> None:
    with apps_server(tmp_path) as server:
        marker = f"never-ready-{os.getpid()}-{tmp_path.name}"
        script = (
            "import subprocess, sys, time; print('waiting forever', flush=True); "
            f"subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(600)', '{marker}']);"
            "time.sleep(600)"
        )
        model = server.create(
            {"command": [sys.executable, "-c", script, marker, "{port}"], "start_timeout": 2}
        )
        failed = server.wait_settled(model["id"])
        assert failed["status"] == "failed"
        assert "did not become ready within 2 s" in failed["reason"]
        assert "waiting forever" in failed["last_log"]
        assert app_processes(marker) == []


def test_a_log_flood_stays_bounded(tmp_path: Path) -> None:
    with apps_server(tmp_path, "apps.log_limit=16384") as server:
        app = echo_app(server)
        cookie = server.login(app["id"])
        flood = server.app_get(app["id"], "/flood?n=20000", headers={"Cookie": cookie}, timeout=60)
        assert flood.text == "flooded"
        logs = httpx.get(server.url + f"api/apps/{app['id']}/logs", headers=AUTH)
        assert logs.status_code == 200
        assert len(logs.content) <= 16384
        assert "flood line 19999" in logs.text
        assert "echo app starting" not in logs.text


def test_stop_start_delete_and_records_survive_a_restart(tmp_path: Path) -> None:
    with apps_server(tmp_path) as server:
        app = echo_app(server)
        marker = ECHO
        stopped = httpx.post(server.url + f"api/apps/{app['id']}/stop", headers=AUTH).json()
        assert stopped["status"] == "stopped"
        children = psutil.Process(server.process.pid).children(recursive=True)
        assert not [p for p in children if marker in " ".join(p.cmdline())]
        started = httpx.post(server.url + f"api/apps/{app['id']}/start", headers=AUTH)
        assert started.json()["status"] in ("starting", "ready")
        assert server.wait_settled(app["id"])["status"] == "ready"
        app_id = app["id"]
        children = psutil.Process(server.process.pid).children(recursive=True)
        running = [p for p in children if ECHO in " ".join(p.cmdline())]
        assert running
        assert server.process.stop() == 0  # SIGTERM: apps are stopped with the server
        assert psutil.wait_procs(running, timeout=10)[1] == []
    with apps_server(tmp_path) as server:
        listed = httpx.get(server.url + "api/apps", headers=AUTH).json()
        assert [(a["id"], a["status"]) for a in listed] == [(app_id, "stopped")]
        cookie = server.login(app_id)  # a visit starts it again
        assert server.app_get(app_id, "/", headers={"Cookie": cookie}).text == "ok"
        assert httpx.delete(server.url + f"api/apps/{app_id}", headers=AUTH).status_code == 204
        assert httpx.get(server.url + f"api/apps/{app_id}", headers=AUTH).status_code == 404


def test_server_sigkill_leaves_no_app_process(tmp_path: Path) -> None:
    with apps_server(tmp_path) as server:
        app = echo_app(server)
        children = psutil.Process(server.process.pid).children(recursive=True)
        app_pids = [p.pid for p in children if ECHO in " ".join(p.cmdline())]
        assert app_pids, "the app process was not found"
        server.process.stop(signal.SIGKILL)
        gone, alive = psutil.wait_procs([psutil.Process(pid) for pid in app_pids], timeout=20)
        assert alive == []
        assert len(gone) == len(app_pids)
        del app


def test_a_crashing_app_is_restarted_then_fails(tmp_path: Path) -> None:
    # answers one request (the readiness check), then exits with code 5
    script = (
        "import http.server, sys; "
        "server = http.server.HTTPServer(('127.0.0.1', int(sys.argv[1])), "
        "http.server.SimpleHTTPRequestHandler); "
        "server.handle_request(); print('served once', flush=True); sys.exit(5)"
    )
    with apps_server(tmp_path, "apps.restart_limit=1") as server:
        model = server.create({"command": [sys.executable, "-c", script, "{port}"]})
        end = time.monotonic() + 60
        while time.monotonic() < end:
            current = httpx.get(server.url + f"api/apps/{model['id']}", headers=AUTH).json()
            if current["status"] == "failed":
                break
            time.sleep(0.05)
        assert current["status"] == "failed"
        assert current["reason"] == "exited with code 5 (1 restarts)"
        assert current["restarts"] == 1
        assert "served once" in current["last_log"]


def test_logs_follow_streams_new_output(tmp_path: Path) -> None:
    with apps_server(tmp_path) as server:
        app = echo_app(server)
        cookie = server.login(app["id"])
        url = server.url + f"api/apps/{app['id']}/logs?follow=1"
        with httpx.stream("GET", url, headers=AUTH, timeout=30) as response:
            assert response.headers["content-type"].startswith("text/event-stream")
            lines = response.iter_lines()
            first = next(line for line in lines if line.startswith("data: "))
            assert "echo app starting" in json.loads(first[6:])
            server.app_get(app["id"], "/flood?n=3", headers={"Cookie": cookie})
            text = ""
            for line in lines:
                if line.startswith("data: "):
                    text += json.loads(line[6:])
                if "flood line 2" in text:
                    break
            assert "flood line 0" in text


def test_idle_apps_are_culled_and_start_again(tmp_path: Path) -> None:
    settings = ("apps.cull_idle_timeout=1", "apps.cull_interval=0.2")
    with apps_server(tmp_path, *settings) as server:
        app = echo_app(server)
        end = time.monotonic() + 30
        while time.monotonic() < end:
            current = httpx.get(server.url + f"api/apps/{app['id']}", headers=AUTH).json()
            if current["status"] != "ready":
                break
            time.sleep(0.1)
        assert current["status"] == "stopped"
        assert "without traffic" in current["reason"]
        cookie = server.login(app["id"])
        assert server.app_get(app["id"], "/", headers={"Cookie": cookie}).text == "ok"


def test_a_websocket_message_over_the_limit_closes_with_1009(tmp_path: Path) -> None:
    with apps_server(tmp_path, f"apps.websocket_max_message_size={1 << 20}") as server:
        app = echo_app(server)
        cookie = server.login(app["id"])

        async def oversize() -> int | None:
            async with connect(
                f"ws://{server.host(app['id'])}/ws",
                host="127.0.0.1",
                port=server.apps_port,
                additional_headers={"Cookie": cookie},
                max_size=None,
            ) as ws:
                await ws.recv()
                await ws.send(b"x" * (1 << 20))  # at the limit: passes
                assert len(await ws.recv()) == 1 << 20
                await ws.send(b"x" * ((1 << 20) + 1))
                with pytest.raises(websockets.ConnectionClosed) as closed:
                    await ws.recv()
                return closed.value.rcvd.code if closed.value.rcvd else None

        assert anyio.run(oversize) == 1009


def test_a_bokeh_app_serves_its_page_and_websocket_through_the_proxy(tmp_path: Path) -> None:
    shutil.copy(Path(ECHO).parent / "bokeh_app.py", tmp_path / "bokeh_app.py")
    with apps_server(tmp_path) as server:
        model = server.create({"framework": "bokeh", "path": "bokeh_app.py"})
        ready = server.wait_settled(model["id"])
        assert ready["status"] == "ready", ready
        cookie = server.login(model["id"])
        page = server.app_get(model["id"], "/bokeh_app", headers={"Cookie": cookie})
        assert page.status_code == 200
        assert "Bokeh" in page.text
        # the page's session token is offered as a subprotocol, as bokehjs does
        token = re.search(r'"token":\s*"([^"]+)"', page.text.replace("&quot;", '"'))
        assert token is not None, page.text[:2000]

        async def handshake() -> str | None:
            async with connect(
                f"ws://{server.host(model['id'])}/bokeh_app/ws",
                host="127.0.0.1",
                port=server.apps_port,
                subprotocols=["bokeh", token.group(1)],  # type: ignore[list-item]
                additional_headers={"Cookie": cookie},
                origin=f"http://{server.host(model['id'])}",  # type: ignore[arg-type]
            ) as ws:
                ack = json.loads(await ws.recv())
                assert ack["msgtype"] == "ACK"
                return ws.subprotocol

        assert anyio.run(handshake) == "bokeh"


def test_the_port_proxy_relays_websockets(tmp_path: Path) -> None:
    with apps_server(tmp_path) as server:
        echo_app(server)
        children = psutil.Process(server.process.pid).children(recursive=True)
        [app_process] = [p for p in children if ECHO in " ".join(p.cmdline())]
        port = int(app_process.cmdline()[-1])
        url = server.url.replace("http", "ws", 1) + f"proxy/{port}/ws"

        async def exchange() -> None:
            async with connect(url, additional_headers=AUTH, subprotocols=["x"]) as ws:  # type: ignore[list-item]
                assert json.loads(await ws.recv())["offered"] == ["x"]
                await ws.send(b"\x00\x01")
                assert await ws.recv() == b"\x00\x01"

        anyio.run(exchange)
