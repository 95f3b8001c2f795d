"""Junction as a JupyterHub single-user server, under a real Hub (tests/jupyterhub/hubrun.py).

The Hub (jupyterhub from the dev extra, configurable-http-proxy from npm) spawns
``junction-singleuser`` with the SimpleLocalProcessSpawner; everything goes through the proxy
as a browser or a client would.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from contextlib import closing
from datetime import datetime
from pathlib import Path

import httpx
import psutil
import pytest
from itsdangerous import URLSafeTimedSerializer

sys.path.insert(0, str(Path(__file__).parents[1] / "jupyterhub"))

from hubrun import Hub, hub_login, running_hub, wait_for

pytestmark = pytest.mark.timeout(300)


@pytest.fixture(scope="module")
def hub(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Hub]:
    """One Hub for the module; ana's server is started by the tests that need it."""
    with running_hub(tmp_path_factory.mktemp("hub")) as running:
        yield running


def _kernel_processes(tmp: Path) -> list[psutil.Process]:
    """ipykernel processes whose connection file lies in this Hub's runtime dir."""
    found = []
    for proc in psutil.process_iter(["cmdline"]):
        cmdline = proc.info["cmdline"] or []
        if any("ipykernel" in part for part in cmdline) and any(
            str(tmp) in part for part in cmdline
        ):
            found.append(proc)
    return found


def _stamp(value: str) -> datetime:
    return datetime.fromisoformat(value.replace("Z", "+00:00"))


def test_server_under_the_hub(hub: Hub) -> None:
    """Spawn, use with Hub tokens, refuse others, report activity, stop: no kernel left."""
    ana = hub.token_for("ana")
    bob = hub.token_for("bob")
    hub.start_server("ana")
    base = f"{hub.url}/user/ana/"
    with httpx.Client(base_url=base, timeout=30) as client:
        # readiness URL the Hub polls: answers without credentials, as jupyter_server does
        ready = client.get("api")
        assert ready.status_code == 200
        assert "version" in ready.json()

        mine = client.get("api/kernels", headers={"Authorization": f"token {ana}"})
        assert mine.status_code == 200, mine.text
        assert mine.json() == []
        me = client.get("api/me", headers={"Authorization": f"bearer {ana}"}).json()
        assert me["identity"]["name"] == "ana"

        other = client.get("api/kernels", headers={"Authorization": f"token {bob}"})
        assert other.status_code == 403, other.text
        assert client.get("api/kernels").status_code == 403
        forged = client.get("api/kernels", headers={"Authorization": "token not-a-hub-token"})
        assert forged.status_code == 403

        # a page without credentials goes to the Hub's OAuth login, with PKCE and a state
        page = client.get("lab", headers={"Accept": "text/html"}, follow_redirects=False)
        assert page.status_code == 302
        forward = client.get(hub.url + page.headers["location"])
        assert forward.status_code == 302, forward.text
        assert forward.headers["location"].startswith("/user/ana/oauth_login?next=")
        login = client.get(hub.url + forward.headers["location"])
        assert login.status_code == 302, login.text
        authorize = httpx.URL(login.headers["location"])
        assert authorize.path == "/hub/api/oauth2/authorize"
        assert authorize.params["client_id"] == "jupyterhub-user-ana"
        assert authorize.params["redirect_uri"] == "/user/ana/oauth_callback"
        assert authorize.params["code_challenge_method"] == "S256"
        # the state cookie is signed and carries the state (the server keeps nothing)
        signed = login.cookies.get("jupyterhub-user-ana-oauth-state")
        assert signed
        _, carried = URLSafeTimedSerializer("").loads_unsafe(signed)
        assert carried["s"] == authorize.params["state"]

        # the callback refuses a state that is not the browser's, and a code the Hub never made
        state = authorize.params["state"]
        forged = client.get("oauth_callback", params={"code": "x", "state": "not-the-state"})
        assert forged.status_code == 403, forged.text
        assert client.get("oauth_callback", params={"state": state}).status_code == 400
        bogus = client.get("oauth_callback", params={"code": "made-up", "state": state})
        assert bogus.status_code == 403, bogus.text
        assert "refused the OAuth code" in bogus.json()["message"]

        # activity: a kernel makes the Hub's last_activity move
        before = _stamp(hub.user("ana")["servers"][""]["last_activity"])
        started = client.post(
            "api/kernels", json={"name": "python3"}, headers={"Authorization": f"token {ana}"}
        )
        assert started.status_code == 201, started.text
        wait_for(
            lambda: _stamp(hub.user("ana")["servers"][""]["last_activity"]) > before,
            timeout=30,
            what="the Hub to record the server's activity",
        )
        assert _kernel_processes(hub.tmp), "the kernel process should be running"

    hub.stop_server("ana")
    wait_for(
        lambda: not _kernel_processes(hub.tmp),
        timeout=30,
        what="every kernel process to be gone after the Hub stopped the server",
    )


def test_browser_login_through_the_hub(hub: Hub) -> None:
    """Log into the Hub, follow its OAuth into ana's server, use the API with the session
    cookie and XSRF; bob logging into the Hub cannot reach ana's server."""
    hub.start_server("ana")
    try:
        browser, landed = hub_login(hub, "ana", next_url="/user/ana/lab")
        with closing(browser):
            assert landed.status_code == 200, landed.text[:300]
            assert landed.url.path == "/user/ana/lab"
            assert '"hubUser": "ana"' in landed.text or '"hubUser":"ana"' in landed.text
            assert "hubPrefix" in landed.text
            kernels = browser.get("/user/ana/api/kernels")
            assert kernels.status_code == 200, kernels.text
            xsrf = browser.cookies.get("_xsrf", path="/user/ana/")
            assert xsrf, "Junction sets its _xsrf cookie on pages"
            made = browser.post(
                "/user/ana/api/contents",
                json={"type": "notebook"},
                headers={"X-XSRFToken": xsrf},
            )
            assert made.status_code == 201, made.text
            refused = browser.post("/user/ana/api/contents", json={"type": "notebook"})
            assert refused.status_code == 403
            out = browser.get("/user/ana/logout", follow_redirects=False)
            assert out.status_code == 302
            assert out.headers["location"] == "/hub/logout"
            after = browser.get("/user/ana/api/kernels", follow_redirects=False)
            assert after.status_code == 403

        intruder, _ = hub_login(hub, "bob", next_url="/hub/home")
        with closing(intruder):
            page = intruder.get("/user/ana/lab", headers={"Accept": "text/html"})
            assert page.status_code == 403, (page.url, page.text[:300])
            api = intruder.get("/user/ana/api/kernels", follow_redirects=False)
            assert api.status_code == 403
    finally:
        hub.stop_server("ana")
