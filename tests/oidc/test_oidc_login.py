"""OpenID Connect logins against a real provider: the code flow with PKCE, state, nonce, ID
token checks, allow-lists, group changes at the provider, and RP-initiated logout.

The provider is npm's oidc-provider (``provider.mjs``, OpenID-certified) on a loopback port,
with test accounts and groups; Junction runs on real uvicorn in a thread.
"""

from __future__ import annotations

import base64
import json
import os
import re
import shutil
import sqlite3
import subprocess
import time
from collections.abc import Iterator
from contextlib import closing, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlencode, urljoin, urlsplit, urlunsplit

import anyio
import httpx
import pytest

from junction.plugins.users.oidc import LoginRefused, OpenIDLogin
from junction.plugins.users.settings import UsersSettings
from junction.services import AUTH
from junction.testing import free_port, serve_in_thread

HERE = Path(__file__).parent
CLIENT_SECRET = "junction-test-secret"
_FORM_ACTION = re.compile(r'<form[^>]*action="([^"]+)"')
_PROMPT = re.compile(r'name="prompt" value="([a-z]+)"')


@dataclass
class Provider:
    """The running provider: its issuer URL and the port Junction's callback uses."""

    issuer: str
    process: subprocess.Popen[str]

    def set_groups(self, sub: str, groups: list[str] | None) -> None:
        """Change an account's groups at the provider (None: no groups claim at all)."""
        response = httpx.post(f"{self.issuer}/test/groups/{sub}", content=json.dumps(groups))
        assert response.status_code == 204

    def set_groups_in_id_token_only(self, sub: str, only: bool) -> None:
        """Have the provider's userinfo leave an account's groups claim out while its ID
        tokens (at login and on refresh) carry it."""
        url = f"{self.issuer}/test/groups-in-id-token-only/{sub}"
        assert httpx.post(url, content=json.dumps(only)).status_code == 204


def _start_provider(port: int, junction_url: str, env: dict[str, str] | None = None) -> Provider:
    node = shutil.which("node")
    if node is None:
        pytest.fail("Node.js is missing: apt-get install nodejs")
    if not (HERE / "node_modules" / "oidc-provider").is_dir():
        pytest.fail(f"oidc-provider is missing: cd {HERE} && npm ci")
    process = subprocess.Popen(
        [node, "provider.mjs", str(port), f"{junction_url}oauth/callback", f"{junction_url}login"],
        cwd=HERE,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env={**os.environ, **(env or {})},
    )
    assert process.stdout is not None
    deadline = time.monotonic() + 30
    seen = []
    while time.monotonic() < deadline:
        line = process.stdout.readline()
        if not line:
            break
        seen.append(line)
        if line.startswith("ready "):
            return Provider(line.split()[1], process)
    process.kill()
    pytest.fail("the OpenID provider did not start:\n" + "".join(seen))


@contextmanager
def oidc_junction(
    root: Path, *, provider_env: dict[str, str] | None = None, **extra: Any
) -> Iterator[tuple[str, Provider, Any]]:
    """Junction (multi-user, OpenID logins only) and the provider; yields (url, provider,
    app). ``extra`` adds users settings."""
    port = free_port()
    users = {
        "oidc_issuer": f"http://127.0.0.1:{port}",
        "oidc_client_id": "junction",
        "oidc_client_secret": CLIENT_SECRET,
        "oidc_admin_groups": ["lab-admins"],
        "allowed_groups": ["lab"],
        "password_login": False,
        **extra,
    }
    with serve_in_thread(
        root_dir=root,
        enable=["users"],
        database_url=f"sqlite+aiosqlite:///{root / 'junction.db'}",
        plugin_settings={"users": users},
    ) as (url, app):
        provider = _start_provider(port, url, provider_env)
        try:
            yield url, provider, app
        finally:
            provider.process.terminate()
            provider.process.wait(10)
            if provider.process.stdout is not None:
                provider.process.stdout.close()


@pytest.fixture
def oidc_server(tmp_path: Path) -> Iterator[tuple[str, Provider, Any]]:
    """:func:`oidc_junction` with the default settings."""
    with oidc_junction(tmp_path) as running:
        yield running


def log_in_at_provider(location: str, login: str, callback_prefix: str) -> str:
    """Go through the provider's login and consent pages as a browser would; returns the
    callback URL the provider sends the browser back to."""
    with httpx.Client(timeout=30) as idp:
        response = idp.get(location)
        for _ in range(20):
            if response.is_redirect:
                target = urljoin(str(response.url), response.headers["location"])
                if target.startswith(callback_prefix):
                    return target
                response = idp.get(target)
                continue
            assert response.status_code == 200, response.text
            action = _FORM_ACTION.search(response.text)
            prompt = _PROMPT.search(response.text)
            assert action is not None, response.text
            data = {"prompt": prompt.group(1) if prompt else "login"}
            if data["prompt"] == "login":
                data.update(login=login, password="any")
            response = idp.post(urljoin(str(response.url), action.group(1)), data=data)
    raise AssertionError("the provider never sent the browser back")


Server = tuple[str, Provider, Any]


def _start(browser: httpx.Client, url: str) -> str:
    """Click "log in with OpenID Connect"; returns the provider URL the browser goes to."""
    page = browser.get(f"{url}login")
    assert "login/oidc" in page.text
    response = browser.get(f"{url}login/oidc", params={"next": "/api/me"})
    assert response.status_code == 302
    location = response.headers["location"]
    query = parse_qs(urlsplit(location).query)
    assert query["code_challenge_method"] == ["S256"]
    for key in ("code_challenge", "nonce", "state"):
        assert query[key], key
    return location


@contextmanager
def _log_in(url: str, login: str) -> Iterator[httpx.Client]:
    with httpx.Client(timeout=30) as browser:
        callback = log_in_at_provider(_start(browser, url), login, f"{url}oauth/callback")
        response = browser.get(callback)
        assert response.status_code == 302, response.text
        assert response.headers["location"] == "/api/me"
        yield browser


def test_a_user_of_an_allowed_group_logs_in(oidc_server: Server) -> None:
    url, _, app = oidc_server
    with _log_in(url, "ana") as browser:
        me = browser.get(f"{url}api/me").json()["identity"]
        assert me["username"] == "ana"
        assert me["display_name"] == "Ana Lima"
        assert me["groups"] == ["lab"]
        assert me["admin"] is False
        cookie = browser.cookies[app.state.services.get(AUTH).cookie_name]
        assert len(cookie) >= 43  # an opaque session id, not a signed payload


def test_the_admin_group_makes_administrators(oidc_server: Server) -> None:
    url, _, _ = oidc_server
    with _log_in(url, "root") as browser:
        assert browser.get(f"{url}api/me").json()["identity"]["admin"] is True
        assert browser.get(f"{url}api/users").status_code == 200


def test_users_outside_the_allowed_groups_are_refused(oidc_server: Server) -> None:
    url, _, _ = oidc_server
    with httpx.Client(timeout=30) as browser:
        callback = log_in_at_provider(_start(browser, url), "eve", f"{url}oauth/callback")
        response = browser.get(callback)
        assert response.status_code == 403
        assert response.json()["reason"] == "LoginRefused"
        assert "not allowed" in response.json()["message"]
        assert browser.get(f"{url}api/me").status_code == 403


def _tampered(callback: str, **changes: str) -> str:
    parts = urlsplit(callback)
    query = {k: v[0] for k, v in parse_qs(parts.query).items()}
    query.update(changes)
    return urlunsplit(parts._replace(query=urlencode(query)))


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"state": "forged-state"}, "unknown or expired"),
        ({"iss": "http://127.0.0.1:1"}, "another issuer"),
        ({"code": "forged-code"}, "refused the login code"),
    ],
)
def test_a_tampered_callback_is_refused(
    oidc_server: Server, change: dict[str, str], message: str
) -> None:
    url, _, _ = oidc_server
    with httpx.Client(timeout=30) as browser:
        callback = log_in_at_provider(_start(browser, url), "ana", f"{url}oauth/callback")
        response = browser.get(_tampered(callback, **change))
        assert response.status_code == 403
        assert message in response.json()["message"]
        assert browser.get(f"{url}api/me").status_code == 403


def test_a_login_finished_in_another_browser_is_refused(oidc_server: Server) -> None:
    url, _, _ = oidc_server
    with httpx.Client(timeout=30) as victim, httpx.Client(timeout=30) as attacker:
        callback = log_in_at_provider(_start(victim, url), "ana", f"{url}oauth/callback")
        response = attacker.get(callback)  # no state cookie: a login CSRF attempt
        assert response.status_code == 403
        assert attacker.get(f"{url}api/me").status_code == 403


def test_a_user_removed_from_the_group_is_refused_at_the_next_request(tmp_path: Path) -> None:
    settings: dict[str, Any] = {"cache_seconds": 0, "oidc_recheck_seconds": 0}
    with oidc_junction(tmp_path, **settings) as (url, idp, _), _log_in(url, "bob") as browser:
        assert browser.get(f"{url}api/me").status_code == 200
        idp.set_groups("bob", ["guests"])
        assert browser.get(f"{url}api/me").status_code == 403
        idp.set_groups("bob", ["lab"])
        assert browser.get(f"{url}api/me").status_code == 403  # the session has ended


def test_an_administrator_demoted_at_the_provider_is_no_longer_one_at_the_next_recheck(
    tmp_path: Path,
) -> None:
    settings: dict[str, Any] = {"cache_seconds": 0, "oidc_recheck_seconds": 0}
    with oidc_junction(tmp_path, **settings) as (url, idp, _), _log_in(url, "root") as browser:
        me = browser.get(f"{url}api/me").json()["identity"]
        assert (me["admin"], me["groups"]) == (True, ["lab-admins"])
        assert browser.get(f"{url}api/users").status_code == 200
        idp.set_groups("root", ["lab"])  # still allowed in, no longer an administrator
        me = browser.get(f"{url}api/me").json()["identity"]
        assert (me["admin"], me["groups"]) == (False, ["lab"])
        assert browser.get(f"{url}api/users").status_code == 403
        idp.set_groups("root", ["lab", "lab-admins"])
        assert browser.get(f"{url}api/me").json()["identity"]["admin"] is True


def test_groups_only_in_id_tokens_are_rechecked_in_a_refreshed_id_token(
    tmp_path: Path,
) -> None:
    # Userinfo never has the groups claim: each recheck renews the tokens with the refresh
    # token and reads the groups of the new ID token.
    settings: dict[str, Any] = {"cache_seconds": 0, "oidc_recheck_seconds": 0}
    with oidc_junction(tmp_path, **settings) as (url, idp, _):
        idp.set_groups_in_id_token_only("root", True)
        with _log_in(url, "root") as browser:
            login_access, _ = _stored_tokens(tmp_path)
            for _ in range(2):  # unchanged at the provider: kept (each request rechecks)
                me = browser.get(f"{url}api/me")
                assert me.status_code == 200, me.text
                identity = me.json()["identity"]
                assert (identity["admin"], identity["groups"]) == (True, ["lab-admins"])
            assert browser.get(f"{url}api/users").status_code == 200
            idp.set_groups("root", ["lab"])  # demoted at the provider, still allowed in
            identity = browser.get(f"{url}api/me").json()["identity"]
            assert (identity["admin"], identity["groups"]) == (False, ["lab"])
            assert _stored_tokens(tmp_path)[0] != login_access  # renewed tokens are kept
            assert browser.get(f"{url}api/users").status_code == 403
            idp.set_groups("root", ["guests"])  # out of the allowed groups: logged out
            assert browser.get(f"{url}api/me").status_code == 403
            idp.set_groups("root", ["lab-admins"])
            assert browser.get(f"{url}api/me").status_code == 403  # the session has ended


def test_a_groups_claim_left_out_everywhere_means_no_groups(tmp_path: Path) -> None:
    # Issuers that leave out an empty groups claim: a user removed from every group, who was
    # let in by a group alone, is logged out at the next recheck.
    settings: dict[str, Any] = {"cache_seconds": 0, "oidc_recheck_seconds": 0}
    with oidc_junction(tmp_path, **settings) as (url, idp, _), _log_in(url, "bob") as browser:
        assert browser.get(f"{url}api/me").json()["identity"]["groups"] == ["lab"]
        idp.set_groups("bob", None)
        refused = browser.get(f"{url}api/me")
        assert refused.status_code == 403, refused.text
        idp.set_groups("bob", ["lab"])
        assert browser.get(f"{url}api/me").status_code == 403  # the session has ended


def test_logout_ends_the_session_and_continues_at_the_provider(oidc_server: Server) -> None:
    url, provider, _ = oidc_server
    with _log_in(url, "ana") as browser:
        response = browser.get(f"{url}logout")
        assert response.status_code == 302
        target = urlsplit(response.headers["location"])
        assert f"{target.scheme}://{target.netloc}" == provider.issuer
        query = parse_qs(target.query)
        assert query["post_logout_redirect_uri"] == [f"{url}login"]
        assert query["id_token_hint"]
        assert browser.get(f"{url}api/me").status_code == 403
        ended = browser.get(response.headers["location"])
        assert ended.status_code == 200  # the provider's "sign out?" confirmation page


def _stored_id_token(root: Path) -> str:
    with closing(sqlite3.connect(root / "junction.db")) as db:
        (token,) = db.execute("SELECT id_token FROM users_sessions").fetchone()
    assert isinstance(token, str)
    return token


def test_id_tokens_with_a_bad_audience_issuer_nonce_or_signature_are_refused(
    tmp_path: Path,
) -> None:
    with oidc_junction(tmp_path) as (url, provider, _), _log_in(url, "ana"):
        id_token = _stored_id_token(tmp_path)
        nonce = json.loads(base64.urlsafe_b64decode(id_token.split(".")[1] + "=="))["nonce"]

        async def check(
            client_id: str,
            issuer: str,
            token: str,
            expected_nonce: str | None,
            refreshed: bool = False,
        ) -> None:
            settings = UsersSettings(
                oidc_issuer=provider.issuer, oidc_client_id=client_id, oidc_client_secret="x"
            )
            async with OpenIDLogin(settings, None, base_url="/") as login:  # type: ignore[arg-type]  # no directory needed
                await login.metadata()
                login.issuer = issuer
                await login.validate_id_token(token, nonce=expected_nonce, refreshed=refreshed)

        anyio.run(check, "junction", provider.issuer, id_token, nonce)  # the real one passes
        # A refreshed ID token need not carry a nonce; one that does must carry the login's.
        anyio.run(check, "junction", provider.issuer, id_token, None, True)
        anyio.run(check, "junction", provider.issuer, id_token, nonce, True)
        with pytest.raises(LoginRefused):
            anyio.run(check, "junction", provider.issuer, id_token, "another-nonce", True)
        header, payload, signature = id_token.split(".")
        forged = f"{header}.{payload}.{signature[:-4]}AAAA"
        for client_id, issuer, token, expected_nonce, problem in [
            ("other-client", provider.issuer, id_token, nonce, "aud"),
            ("junction", "http://127.0.0.1:1", id_token, nonce, "iss"),
            ("junction", provider.issuer, id_token, "another-nonce", "nonce"),
            ("junction", provider.issuer, forged, nonce, "signature"),
        ]:
            with pytest.raises(LoginRefused) as refused:
                anyio.run(check, client_id, issuer, token, expected_nonce)
            assert "ID token is not valid" in refused.value.message, problem


def _stored_tokens(root: Path) -> tuple[str, str]:
    with closing(sqlite3.connect(root / "junction.db")) as db:
        access, refresh = db.execute(
            "SELECT access_token, refresh_token FROM users_sessions"
        ).fetchone()
    return str(access), str(refresh)


def test_an_expired_access_token_is_renewed_with_the_refresh_token(tmp_path: Path) -> None:
    settings: dict[str, Any] = {"cache_seconds": 0, "oidc_recheck_seconds": 0}
    with (
        oidc_junction(tmp_path, provider_env={"ACCESS_TOKEN_TTL": "1"}, **settings) as (
            url,
            idp,
            _,
        ),
        _log_in(url, "ana") as browser,
    ):
        access, refresh = _stored_tokens(tmp_path)
        assert refresh != "None"
        deadline = time.monotonic() + 30
        while httpx.get(
            f"{idp.issuer}/me", headers={"Authorization": f"Bearer {access}"}
        ).is_success:
            assert time.monotonic() < deadline, "the access token never expired"
            time.sleep(0.2)
        # The issuer refuses the old access token now; the session renews it and goes on.
        assert browser.get(f"{url}api/me").status_code == 200
        renewed, refresh = _stored_tokens(tmp_path)
        assert renewed != access
        # The issuer withdraws the grant (revoking a token of it): the session ends.
        revoked = httpx.post(
            f"{idp.issuer}/token/revocation",
            data={"token": refresh, "token_type_hint": "refresh_token"},
            auth=("junction", CLIENT_SECRET),
        )
        assert revoked.status_code == 200
        assert browser.get(f"{url}api/me").status_code == 403
