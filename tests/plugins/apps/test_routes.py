"""The apps API in-process: validation, models, lifecycle, sharing with the users plugin."""

from __future__ import annotations

import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import anyio
import httpx
import pytest

from junction.plugins.apps.service import APPS
from junction.testing import TEST_TOKEN, app_client

pytestmark = pytest.mark.anyio

ECHO = str(Path(__file__).parents[2] / "apps" / "echo_app.py")
COMMAND = [sys.executable, ECHO, "{port}"]


@asynccontextmanager
async def apps_client(
    root: Path, *enable: str, **settings: Any
) -> AsyncIterator[httpx.AsyncClient]:
    """An in-process app with the apps plugin (and ``enable``), on a database in ``root``."""
    async with app_client(
        root_dir=root,
        enable=["apps", *enable],
        database_url=f"sqlite+aiosqlite:///{root / 'junction.db'}",
        plugin_settings={"apps": settings},
    ) as client:
        yield client


async def settled(client: httpx.AsyncClient, app_id: str, headers: Any = None) -> dict[str, Any]:
    """The app's model once it is no longer starting."""
    with anyio.fail_after(60):
        while True:
            model: dict[str, Any] = (
                await client.get(f"/api/apps/{app_id}", headers=headers)
            ).json()
            if model["status"] != "starting":
                return model
            await anyio.sleep(0.05)


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ({"framework": "flask", "path": "app.py"}, "unknown framework 'flask'"),
        ({"framework": "streamlit", "path": "missing.py"}, "no such file: missing.py"),
        ({"framework": "streamlit", "path": "../outside.py"}, "path outside the root"),
        ({"framework": "streamlit", "path": "/etc/passwd"}, "no such file: /etc/passwd"),
        ({"framework": "streamlit"}, "framework streamlit needs a path"),
        ({"command": ["python", "-m", "http.server"]}, "must use '{port}'"),
        ({}, "give a framework and a path, or a command"),
        (
            {"framework": "panel", "path": "app.py", "command": ["x", "{port}"]},
            "not both",
        ),
    ],
)
async def test_bad_input_is_a_400_naming_it(
    tmp_path: Path, body: dict[str, Any], message: str
) -> None:
    (tmp_path / "app.py").write_text("")
    (tmp_path.parent / "outside.py").write_text("")
    async with apps_client(tmp_path) as client:
        response = await client.post("/api/apps", json=body)
        assert response.status_code == 400
        assert message in response.json()["message"]
        assert (await client.get("/api/apps")).json() == []


async def test_unknown_fields_are_refused(tmp_path: Path) -> None:
    async with apps_client(tmp_path) as client:
        response = await client.post("/api/apps", json={"command": COMMAND, "colour": "red"})
        assert response.status_code == 400
        assert "colour" in response.text


async def test_lifecycle_and_models(tmp_path: Path) -> None:
    (tmp_path / "dash").mkdir()
    (tmp_path / "dash" / "app.py").write_text("")
    async with apps_client(tmp_path) as client:
        created = await client.post("/api/apps", json={"command": COMMAND, "name": "echo"})
        assert created.status_code == 201, created.text
        app = created.json()
        assert app["name"] == "echo"
        assert app["owner"]
        assert app["app_url"].startswith(f"http://{app['id']}.apps.localhost:")
        assert app["url"].endswith(f"/apps/{app['id']}/")
        assert (await settled(client, app["id"]))["status"] == "ready"
        assert [a["id"] for a in (await client.get("/api/apps")).json()] == [app["id"]]
        logs = await client.get(f"/api/apps/{app['id']}/logs")
        assert "echo app starting" in logs.text

        stopped = await client.post(f"/api/apps/{app['id']}/stop")
        assert stopped.json()["status"] == "stopped"
        restarted = await client.post(f"/api/apps/{app['id']}/restart")
        assert restarted.json()["status"] == "starting"
        assert (await settled(client, app["id"]))["status"] == "ready"

        info = (await client.get("/server-proxy/servers-info")).json()
        assert info == {
            "server_processes": [
                {
                    "name": app["id"],
                    "launcher_entry": {
                        "enabled": True,
                        "title": "echo",
                        "path_info": f"apps/{app['id']}/",
                        "category": "Notebook",
                    },
                    "new_browser_tab": True,
                }
            ]
        }
        page = await client.get("/apps")
        assert page.status_code == 200
        assert "api/apps" in page.text

        assert (await client.delete(f"/api/apps/{app['id']}")).status_code == 204
        assert (await client.get(f"/api/apps/{app['id']}")).status_code == 404
        assert (await client.post(f"/api/apps/{app['id']}/stop")).status_code == 404


async def test_a_framework_app_runs_the_presets_command(tmp_path: Path) -> None:
    (tmp_path / "dash").mkdir()
    (tmp_path / "dash" / "app.py").write_text("")
    async with apps_client(tmp_path) as client:
        created = await client.post(
            "/api/apps", json={"framework": "streamlit", "path": "dash/app.py", "start_timeout": 1}
        )
        assert created.status_code == 201, created.text
        app = created.json()
        assert app["name"] == "app"
        assert app["path"] == "dash/app.py"
        assert app["command"][1:4] == ["-m", "streamlit", "run"]
        await client.post(f"/api/apps/{app['id']}/stop")


async def test_predefined_apps_are_listed(tmp_path: Path) -> None:
    predefined = [{"id": "echo", "name": "Echo", "command": COMMAND}]
    async with apps_client(tmp_path, predefined=predefined) as client:
        listed = (await client.get("/api/apps")).json()
        assert [(a["id"], a["name"], a["status"]) for a in listed] == [("echo", "Echo", "stopped")]


async def test_the_port_proxy_strips_junction_credentials(tmp_path: Path) -> None:
    async with apps_client(tmp_path) as client:
        app = (await client.post("/api/apps", json={"command": COMMAND})).json()
        await settled(client, app["id"])
        apps = client.app.state.services.get(APPS)  # type: ignore[attr-defined]
        upstream = apps.processes[app["id"]].port
        seen = await client.get(
            f"/proxy/{upstream}/headers?token={TEST_TOKEN}&a=b",
            headers={"Cookie": "_xsrf=x; junction-auth-1=y; mine=z"},
        )
        assert seen.status_code == 200, seen.text
        body = seen.json()
        headers = dict(body["headers"])
        assert TEST_TOKEN not in seen.text
        assert headers["cookie"] == "mine=z"
        assert headers["x-forwarded-prefix"] == "/proxy/" + str(upstream)
        assert body["path"] == "/headers"
        assert body["query"] == "a=b"
        refused = await client.get(f"/proxy/{apps.apps_port}/")
        assert refused.status_code == 403


# -- ownership and sharing (users plugin) -----------------------------------------------------


async def _token(admin: httpx.AsyncClient, name: str, groups: list[str] | None = None) -> Any:
    created = await admin.post("/api/users", json={"name": name, "groups": groups or []})
    assert created.status_code == 201, created.text
    token = (await admin.post(f"/api/users/{name}/tokens")).json()["token"]
    return {"Authorization": f"token {token}"}


async def test_owners_viewers_and_others(tmp_path: Path) -> None:
    async with apps_client(tmp_path, "users") as admin:
        ana = await _token(admin, "ana")
        bob = await _token(admin, "bob", ["staff"])
        eve = await _token(admin, "eve")
        created = await admin.post("/api/apps", json={"command": COMMAND}, headers=ana)
        assert created.status_code == 201, created.text
        app = created.json()
        assert app["owner"] == "ana"
        app_id = app["id"]

        # others do not see it at all
        assert (await admin.get(f"/api/apps/{app_id}", headers=bob)).status_code == 404
        assert (await admin.get("/api/apps", headers=bob)).json() == []
        assert (await admin.get(f"/apps/{app_id}/", headers=bob)).status_code == 404

        # shared with a group: bob may open it, not manage it
        shared = await admin.put(
            f"/api/apps/{app_id}/sharing", json={"groups": ["staff"]}, headers=ana
        )
        assert shared.status_code == 200, shared.text
        assert (await admin.get(f"/api/apps/{app_id}", headers=bob)).status_code == 200
        assert (await admin.get(f"/apps/{app_id}/", headers=bob)).status_code == 302
        for method, path in [
            ("POST", "stop"),
            ("POST", "restart"),
            ("GET", "logs"),
        ]:
            refused = await admin.request(method, f"/api/apps/{app_id}/{path}", headers=bob)
            assert refused.status_code == 403, (path, refused.text)
        assert (await admin.delete(f"/api/apps/{app_id}", headers=bob)).status_code == 403
        put = await admin.put(f"/api/apps/{app_id}/sharing", json={"public": True}, headers=bob)
        assert put.status_code == 403
        assert (await admin.get(f"/api/apps/{app_id}", headers=eve)).status_code == 404

        # everyone logged in
        await admin.put(f"/api/apps/{app_id}/sharing", json={"authenticated": True}, headers=ana)
        assert (await admin.get(f"/api/apps/{app_id}", headers=eve)).status_code == 200

        # the administrator (server token) manages everyone's apps
        assert (await admin.get(f"/api/apps/{app_id}/logs")).status_code == 200
        assert (await admin.delete(f"/api/apps/{app_id}", headers=ana)).status_code == 204

        # no port proxy in multi-user mode
        assert (await admin.get("/proxy/1234/")).status_code == 404


def serverproxy_servers() -> dict[str, Any]:
    """A jupyter_serverproxy_servers entry point's callable."""
    return {
        "command": [sys.executable, ECHO, "{port}"],
        "environment": {"GREETING": "hi"},
        "timeout": 20,
        "launcher_entry": {"title": "Echo server"},
    }


def broken_servers() -> dict[str, Any]:
    """An entry point whose callable fails."""
    raise RuntimeError("broken package")


async def test_jupyter_serverproxy_entry_points_become_apps(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from importlib.metadata import EntryPoint

    import junction.plugins.apps.manager as manager

    points = [
        EntryPoint("Echo", f"{__name__}:serverproxy_servers", "jupyter_serverproxy_servers"),
        EntryPoint("broken", f"{__name__}:broken_servers", "jupyter_serverproxy_servers"),
    ]
    monkeypatch.setattr(manager, "entry_points", lambda group: points)
    async with apps_client(tmp_path) as client:
        listed = (await client.get("/api/apps")).json()
        assert [(a["id"], a["name"], a["env"]) for a in listed] == [
            ("echo", "Echo server", {"GREETING": "hi"})
        ]
        assert (await client.post("/api/apps/echo/start")).status_code == 200
        assert (await settled(client, "echo"))["status"] == "ready"
        tiles = (await client.get("/server-proxy/servers-info")).json()["server_processes"]
        assert [t["launcher_entry"]["title"] for t in tiles] == ["Echo server"]


async def test_the_app_host_follows_sharing(tmp_path: Path) -> None:
    async with apps_client(tmp_path, "users") as admin:
        ana = await _token(admin, "ana")
        bob = await _token(admin, "bob")
        app = (await admin.post("/api/apps", json={"command": COMMAND}, headers=ana)).json()
        await settled(admin, app["id"], ana)
        apps = admin.app.state.services.get(APPS)  # type: ignore[attr-defined]
        host = {"Host": f"{app['id']}.apps.localhost:{apps.apps_port}"}
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{apps.apps_port}") as browser:
            # anonymous: sent to Junction to log in
            assert (await browser.get("/", headers=host)).status_code == 302

            # shared with bob: his code opens it
            await admin.put(f"/api/apps/{app['id']}/sharing", json={"users": ["bob"]}, headers=ana)
            handover = await admin.get(f"/apps/{app['id']}/", headers=bob)
            assert handover.status_code == 302
            location = httpx.URL(handover.headers["location"])
            exchange = await browser.get(f"{location.path}?{location.query.decode()}", headers=host)
            assert exchange.status_code == 302
            cookie = {"Cookie": exchange.headers["set-cookie"].split(";")[0]}
            seen = await browser.get("/headers", headers={**host, **cookie})
            assert dict(seen.json()["headers"])["x-forwarded-user"] == "bob"

            # unshared: his cookie no longer opens it
            await admin.put(f"/api/apps/{app['id']}/sharing", json={}, headers=ana)
            assert (await browser.get("/headers", headers={**host, **cookie})).status_code == 403

            # public: anyone, without logging in
            await admin.put(f"/api/apps/{app['id']}/sharing", json={"public": True}, headers=ana)
            assert (await browser.get("/", headers=host)).text == "ok"
