"""One shared multi-user Junction as a JupyterHub service: the Hub is its identity provider.

A real Hub (jupyterhub, configurable-http-proxy, DummyAuthenticator with a password) with an
external service ``junction``, and Junction started as a subprocess with the ``multiuser``
profile plus the ``hubservice`` plugin and ``users.identity = "hub"``, given the
``JUPYTERHUB_*`` variables a Hub-managed service gets. Hub users in the group ``class`` may
use the service; ``staff`` is mapped to administrators; ``cy`` may use the service at the
Hub but is outside ``users.allowed_groups``; ``eve`` may not use it at all. One Hub and one
Junction for the module.
"""

from __future__ import annotations

import json
import os
import secrets
import sys
import threading
from collections.abc import Iterator
from contextlib import closing
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from junction.testing import ServerProcess, free_port

sys.path.insert(0, str(Path(__file__).parents[1] / "browser"))

from helpers import ARTIFACTS, CHROMIUM, check_tools, node_summary
from hubrun import PASSWORD, PROXY, Hub, hub_json, hub_login, running_hub

pytestmark = [pytest.mark.e2e, pytest.mark.browser, pytest.mark.timeout(240)]

PREFIX = "/services/junction/"
SERVICE_TOKEN = secrets.token_hex(24)
FLOW = Path(__file__).parent / "hub_service_flow.mjs"


@dataclass
class Shared:
    """The Hub and the shared Junction it vouches for."""

    hub: Hub
    junction: ServerProcess
    direct: str
    """Junction's own address (not through the proxy), e.g. http://127.0.0.1:PORT."""


def _hub_config(port: int) -> str:
    return f"""
c.JupyterHub.services.append({{
    "name": "junction",
    "url": "http://127.0.0.1:{port}",
    "api_token": {SERVICE_TOKEN!r},
    "oauth_no_confirm": True,
}})
c.JupyterHub.load_groups = {{
    "class": {{"users": ["ana", "bob", "dan"]}},
    "staff": {{"users": ["dan"]}},
}}
c.JupyterHub.load_roles.append({{
    "name": "junction-users",
    "scopes": ["access:services!service=junction"],
    "groups": ["class"],
    "users": ["cy"],
}})
"""


def _junction_config(tmp: Path, port: int) -> Path:
    root = tmp / "root"
    root.mkdir()
    config = tmp / "junction.toml"
    config.write_text(
        f"""
profile = "multiuser"
enable = ["hubservice"]
ip = "127.0.0.1"
port = {port}
base_url = "{PREFIX}"
root_dir = "{root}"
database_url = "sqlite+aiosqlite:///{tmp}/junction.sqlite"
cookie_secret = "{secrets.token_hex(16)}"

[users]
identity = "hub"
password_login = false
hub_admin_groups = ["staff"]
hub_group_roles = {{ staff = ["admin"] }}
allowed_groups = ["class"]
cache_seconds = 0
oidc_recheck_seconds = 0
"""
    )
    return config


@pytest.fixture(scope="module")
def shared(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Shared]:
    """Junction, given the variables the Hub gives a managed service, and the Hub, started
    side by side (Junction waits for no Hub at startup)."""
    check_tools(
        modules=(),
        node=20,
        needs={PROXY: f"configurable-http-proxy is missing: cd {PROXY.parents[2]} && npm ci"},
    )
    tmp = tmp_path_factory.mktemp("hubservice")
    port, hub_port = free_port(), free_port()
    env = {
        "JUPYTERHUB_API_URL": f"http://127.0.0.1:{hub_port}/hub/api",
        "JUPYTERHUB_API_TOKEN": SERVICE_TOKEN,
        "JUPYTERHUB_CLIENT_ID": "service-junction",
        "JUPYTERHUB_SERVICE_NAME": "junction",
        "JUPYTERHUB_SERVICE_PREFIX": PREFIX,
        "JUPYTERHUB_BASE_URL": "/",
        "JUPYTERHUB_OAUTH_CALLBACK_URL": f"{PREFIX}oauth_callback",
        "JUPYTERHUB_OAUTH_ACCESS_SCOPES": json.dumps(["access:services!service=junction"]),
        "JUPYTER_RUNTIME_DIR": str(tmp / "runtime"),
        "JUPYTER_DATA_DIR": str(tmp / "data"),
        "JUPYTER_CONFIG_DIR": str(tmp / "config"),
    }
    config = _junction_config(tmp, port)
    junction = ServerProcess(["--config", str(config)], log_path=tmp / "junction.log")
    failures: list[BaseException] = []

    def start() -> None:
        try:
            junction.start(timeout=120)
        except BaseException as exc:
            failures.append(exc)

    with pytest.MonkeyPatch.context() as patch:
        for name, value in env.items():
            patch.setenv(name, value)
        starting = threading.Thread(target=start)
        starting.start()  # the child copies the environment at once, before the patch ends
        while junction.process is None and starting.is_alive():
            starting.join(0.05)
    try:
        with running_hub(tmp / "hub", extra=_hub_config(port), hub_port=hub_port) as hub:
            starting.join(150)
            assert not starting.is_alive(), "junction did not start in time"
            if failures:
                raise failures[0]
            yield Shared(hub, junction, f"http://127.0.0.1:{port}")
    finally:
        starting.join(150)
        if junction.process is not None:
            junction.stop()


def _logged_in(shared: Shared, name: str, then: str) -> tuple[httpx.Client, httpx.Response]:
    """A client that logged into the Hub as ``name`` and followed the service's Hub login
    to ``then`` (a path under the service)."""
    start = httpx.URL(f"{PREFIX}login/hub", params={"next": PREFIX + then})
    return hub_login(shared.hub, name, next_url=str(start))


def test_hub_users_each_land_in_their_own_home(shared: Shared) -> None:
    """In chromium, ana and bob log into the shared Junction through the Hub; each lands in
    JupyterLab in their own home, and neither sees the other's files."""
    env = {
        **os.environ,
        "HUB_URL": shared.hub.url,
        "PREFIX": PREFIX,
        "PASSWORD": PASSWORD,
        "ARTIFACTS_DIR": str(ARTIFACTS),
        "CHROMIUM": str(CHROMIUM),
    }
    summary = node_summary(str(FLOW), env, timeout=200)
    assert summary["ok"], (
        f"{summary['error']}\n--- junction ---\n{shared.junction.log()[-3000:]}"
        f"\n--- hub ---\n{shared.hub.log_tail(30)}"
    )
    for name, other in (("ana", "bob"), ("bob", "ana")):
        seen = summary["users"][name]
        assert seen["landed"].startswith(f"{PREFIX}lab"), seen
        assert seen["preferredPath"] == f"/home/{name}", seen
        assert seen["me"]["username"] == name
        assert seen["me"]["admin"] is False
        assert seen["saved"] == 201, seen
        assert f"{name}-notes.txt" in seen["mine"]
        assert seen["others"] == 404, seen
        assert seen["otherFile"] == 404, seen
        assert seen["homeListing"] == [name], seen
        assert other not in seen["homeListing"]


def test_a_hub_group_mapped_to_admin_gives_the_admin_role(shared: Shared) -> None:
    """dan is in the Hub group ``staff``: an administrator with the admin role; ana is not."""
    client, me = _logged_in(shared, "dan", "api/me")
    with closing(client):
        assert me.status_code == 200, me.text[:300]
        assert me.url.path == f"{PREFIX}api/me"
        identity = hub_json(me)["identity"]
        assert identity["username"] == "dan"
        assert identity["admin"] is True
        assert "admin" in identity["roles"]
        assert sorted(identity["groups"]) == ["class", "staff"]
        everyone = client.get(f"{PREFIX}api/users")
        assert everyone.status_code == 200, everyone.text
        accounts = {account["name"]: account for account in hub_json(everyone)}
        assert accounts["dan"]["source"] == "hub"
    client, me = _logged_in(shared, "ana", "api/me")
    with closing(client):
        identity = hub_json(me)["identity"]
        assert identity["username"] == "ana"
        assert identity["admin"] is False
        assert identity["roles"] == ["user"]
        assert client.get(f"{PREFIX}api/users").status_code == 403


def test_hub_users_without_access_are_refused(shared: Shared) -> None:
    """eve lacks the service's access scope: the Hub itself refuses her at its authorization
    page (403). cy holds it, but Junction's ``users.allowed_groups`` leaves her out: the
    callback answers 403 with a JSON reason and opens no session."""
    client, refused = _logged_in(shared, "eve", "api/me")
    with closing(client):
        assert refused.status_code == 403, refused.text[:300]
        assert refused.url.path == "/hub/api/oauth2/authorize"
        assert client.get(f"{PREFIX}api/me").status_code == 403
    client, refused = _logged_in(shared, "cy", "api/me")
    with closing(client):
        assert refused.status_code == 403, refused.text[:300]
        assert refused.url.path == f"{PREFIX}oauth_callback"
        body = hub_json(refused)
        assert body["reason"] == "LoginRefused"
        assert "cy may not use this server" in body["message"]
        assert client.get(f"{PREFIX}api/me").status_code == 403


def test_a_callback_with_a_bad_state_is_refused(shared: Shared) -> None:
    """A callback whose state is not the browser's is 403, one without code 400: JSON both."""
    with httpx.Client(base_url=shared.hub.url, timeout=30) as client:
        started = client.get(f"{PREFIX}login/hub")
        assert started.status_code == 302, started.text
        authorize = httpx.URL(started.headers["location"])
        assert authorize.path == "/hub/api/oauth2/authorize"
        assert authorize.params["client_id"] == "service-junction"
        assert authorize.params["redirect_uri"] == f"{PREFIX}oauth_callback"
        forged = client.get(f"{PREFIX}oauth_callback", params={"code": "x", "state": "forged"})
        assert forged.status_code == 403
        assert hub_json(forged)["reason"] == "OAuthStateMismatch"
        state = authorize.params["state"]
        bogus = client.get(f"{PREFIX}oauth_callback", params={"code": "made-up", "state": state})
        assert bogus.status_code == 403
        assert "refused the OAuth code" in hub_json(bogus)["message"]
        missing = client.get(f"{PREFIX}oauth_callback", params={"state": state})
        assert missing.status_code == 400
        assert set(hub_json(missing)) >= {"message", "reason"}


def test_sessions_outlive_the_hub_and_new_logins_get_503(shared: Shared) -> None:
    """Runs last: with the Hub stopped, an open session keeps working (every request is
    rechecked here, ``cache_seconds = 0``, and a Hub that does not answer keeps the session);
    a new login is 503."""
    client, me = _logged_in(shared, "bob", "api/me")
    with closing(client):
        assert me.status_code == 200, me.text[:300]
        cookies = httpx.Cookies()
        for cookie in client.cookies.jar:
            if cookie.path.startswith(PREFIX):
                cookies.set(cookie.name, cookie.value or "")
    shared.hub.stop()
    with httpx.Client(base_url=shared.direct, cookies=cookies, timeout=30) as direct:
        home = direct.get(f"{PREFIX}api/contents/home/bob")
        assert home.status_code == 200, home.text
        again = direct.get(f"{PREFIX}api/me")
        assert hub_json(again)["identity"]["username"] == "bob"
        login = direct.get(f"{PREFIX}login/hub")
        assert login.status_code == 503, login.text
        assert "JupyterHub cannot be reached" in hub_json(login)["message"]
    assert "no longer allowed" not in shared.junction.log()
