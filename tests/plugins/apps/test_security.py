"""Who sees what of a shared app, app-host sessions that follow the account, and apps
launched only from files the user may read (in-process, with the users plugin)."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import httpx
import pytest
from tests.plugins.apps.test_routes import COMMAND, _token, apps_client, settled

from junction.plugins.apps.service import APPS

pytestmark = pytest.mark.anyio

FAILING = [sys.executable, "-c", "import sys; print('SECRET-OUTPUT-42'); sys.exit(3)", "{port}"]


async def _app_cookie(
    admin: httpx.AsyncClient, browser: httpx.AsyncClient, app_id: str, who: Any, host: Any
) -> dict[str, str]:
    handover = await admin.get(f"/apps/{app_id}/", headers=who)
    assert handover.status_code == 302, handover.text
    location = httpx.URL(handover.headers["location"])
    exchange = await browser.get(f"{location.path}?{location.query.decode()}", headers=host)
    assert exchange.status_code == 302, exchange.text
    return {"Cookie": exchange.headers["set-cookie"].split(";")[0]}


async def test_viewers_do_not_see_the_command_environment_or_output(tmp_path: Path) -> None:
    async with apps_client(tmp_path, "users", restart_limit=0) as admin:
        ana = await _token(admin, "ana")
        bob = await _token(admin, "bob")
        body = {"command": FAILING, "env": {"DB_PASSWORD": "hunter2"}}
        app = (await admin.post("/api/apps", json=body, headers=ana)).json()
        owned = await settled(admin, app["id"], ana)
        assert owned["status"] == "failed"
        assert owned["env"] == {"DB_PASSWORD": "hunter2"}
        assert "SECRET-OUTPUT-42" in owned["last_log"]
        await admin.put(f"/api/apps/{app['id']}/sharing", json={"authenticated": True}, headers=ana)

        viewed = (await admin.get(f"/api/apps/{app['id']}", headers=bob)).json()
        assert viewed["status"] == "failed"
        assert (viewed["env"], viewed["command"], viewed["last_log"]) == ({}, [], [])
        listed = (await admin.get("/api/apps", headers=bob)).json()
        assert "hunter2" not in str(listed)
        assert "SECRET-OUTPUT-42" not in str(listed)

        apps = admin.app.state.services.get(APPS)  # type: ignore[attr-defined]
        host = {"Host": f"{app['id']}.apps.localhost:{apps.apps_port}"}
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{apps.apps_port}") as browser:
            as_bob = await _app_cookie(admin, browser, app["id"], bob, host)
            page = await browser.get("/", headers={**host, **as_bob})
            assert page.status_code == 502
            assert "exited with code 3" in page.text
            assert "SECRET-OUTPUT-42" not in page.text
            as_ana = await _app_cookie(admin, browser, app["id"], ana, host)
            page = await browser.get("/", headers={**host, **as_ana})
            assert page.status_code == 502
            assert "SECRET-OUTPUT-42" in page.text

            await admin.put(f"/api/apps/{app['id']}/sharing", json={"public": True}, headers=ana)
            browser.cookies.clear()
            anonymous = await browser.get("/", headers=host)
            assert anonymous.status_code == 502
            assert "SECRET-OUTPUT-42" not in anonymous.text


@pytest.mark.parametrize("change", ["disable", "revoke"])
async def test_app_sessions_end_with_the_account(tmp_path: Path, change: str) -> None:
    async with apps_client(tmp_path, "users") as admin:
        ana = await _token(admin, "ana")
        bob = await _token(admin, "bob")
        app = (await admin.post("/api/apps", json={"command": COMMAND}, headers=ana)).json()
        await settled(admin, app["id"], ana)
        await admin.put(f"/api/apps/{app['id']}/sharing", json={"users": ["bob"]}, headers=ana)
        apps = admin.app.state.services.get(APPS)  # type: ignore[attr-defined]
        host = {"Host": f"{app['id']}.apps.localhost:{apps.apps_port}"}
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{apps.apps_port}") as browser:
            as_bob = await _app_cookie(admin, browser, app["id"], bob, host)
            seen = await browser.get("/headers", headers={**host, **as_bob})
            assert dict(seen.json()["headers"])["x-forwarded-user"] == "bob"

            if change == "disable":
                changed = await admin.patch("/api/users/bob", json={"enabled": False})
            else:
                changed = await admin.post("/api/users/bob/revoke")
            assert changed.status_code == 200, changed.text

            after = await browser.get("/headers", headers={**host, **as_bob})
            assert after.status_code == 302  # back to Junction to log in again
            assert "bob" not in after.text
            websocket_like = await browser.post("/headers", headers={**host, **as_bob})
            assert websocket_like.status_code == 403


async def test_apps_start_only_from_files_the_user_may_read(tmp_path: Path) -> None:
    async with apps_client(tmp_path, "users") as admin:
        await _token(admin, "ana")
        bob = await _token(admin, "bob")
        (tmp_path / "home" / "ana").mkdir(parents=True, exist_ok=True)
        (tmp_path / "home" / "ana" / "secret.py").write_text("print(1)\n")
        answers = []
        for path in ("home/ana/secret.py", "home/ana/nope.py"):
            body = {"framework": "streamlit", "path": path}
            refused = await admin.post("/api/apps", json=body, headers=bob)
            assert refused.status_code == 404, refused.text
            answers.append(refused.json()["message"].replace(path, "PATH"))
        assert answers[0] == answers[1]  # no oracle: existing and missing files look alike
        assert (await admin.get("/api/apps", headers=bob)).json() == []
