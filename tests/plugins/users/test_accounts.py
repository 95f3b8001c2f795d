"""Accounts, passwords, sessions and tokens through the HTTP API, on SQLite and PostgreSQL."""

from __future__ import annotations

import json
from collections.abc import Callable
from contextlib import AbstractAsyncContextManager
from typing import Any

import httpx
import pytest

from junction.plugins.users.service import USERS
from junction.testing import TEST_TOKEN

pytestmark = pytest.mark.anyio

MultiUser = Callable[..., AbstractAsyncContextManager[httpx.AsyncClient]]


def service(client: httpx.AsyncClient) -> Any:
    """The users service of an ``app_client`` app."""
    return client.app.state.services.get(USERS)  # type: ignore[attr-defined]  # set by app_client


async def _login(client: httpx.AsyncClient, username: str, password: str) -> httpx.Response:
    page = await client.get("/login", headers={"Authorization": ""})
    xsrf = page.cookies.get("_xsrf") or client.cookies["_xsrf"]
    return await client.post(
        "/login",
        data={"username": username, "password": password, "_xsrf": xsrf},
        headers={"Authorization": ""},
    )


def _browser(client: httpx.AsyncClient) -> httpx.AsyncClient:
    """A second client on the same app without the server token (a browser)."""
    return httpx.AsyncClient(transport=client._transport, base_url=str(client.base_url))


async def test_admin_creates_a_user_who_logs_in_with_a_password(multiuser: MultiUser) -> None:
    async with multiuser() as admin:
        created = await admin.post(
            "/api/users", json={"name": "ana", "password": "s3cret-pw", "groups": ["lab"]}
        )
        assert created.status_code == 201, created.text
        assert created.json()["roles"] == ["user"]
        assert created.json()["has_password"] is True
        async with _browser(admin) as browser:
            refused = await _login(browser, "ana", "wrong")
            assert refused.status_code == 401
            response = await _login(browser, "ana", "s3cret-pw")
            assert response.status_code == 302
            assert browser.cookies.get(_cookie_name(admin))
            me = await browser.get(
                "/api/me", params={"permissions": json.dumps({"kernels": ["execute"]})}
            )
            assert me.status_code == 200
            body = me.json()
            assert body["identity"]["username"] == "ana"
            assert body["identity"]["groups"] == ["lab"]
            assert body["identity"]["admin"] is False
            assert body["permissions"] == {"kernels": ["execute"]}
            # A user may not stop the server nor manage users.
            assert (await browser.get("/api/users")).status_code == 403


def _cookie_name(client: httpx.AsyncClient) -> str:
    from junction.services import AUTH

    return str(client.app.state.services.get(AUTH).cookie_name)  # type: ignore[attr-defined]


async def test_login_rotates_the_session_and_logout_ends_it(multiuser: MultiUser) -> None:
    async with multiuser() as admin:
        await service(admin).add_user("ana", password="pw-ana-123")
        name = _cookie_name(admin)
        async with _browser(admin) as browser:
            await _login(browser, "ana", "pw-ana-123")
            first = browser.cookies[name]
            await _login(browser, "ana", "pw-ana-123")
            second = browser.cookies[name]
            assert first != second
            # The first session ended when the second began.
            async with _browser(admin) as thief:
                thief.cookies.set(name, first)
                assert (await thief.get("/api/me")).status_code == 403
                assert (await browser.get("/api/me")).status_code == 200
                await browser.get("/logout")
                thief.cookies.set(name, second)
                assert (await thief.get("/api/me")).status_code == 403


async def test_admin_revocation_ends_sessions_and_tokens_at_once(multiuser: MultiUser) -> None:
    async with multiuser() as admin:
        users = service(admin)
        await users.add_user("bob", password="pw-bob-123")
        issued = await admin.post("/api/users/bob/tokens", json={"note": "ci"})
        assert issued.status_code == 201
        token = issued.json()["token"]
        assert token.startswith("jct_")
        auth = {"Authorization": f"token {token}"}
        assert (await admin.get("/api/me", headers=auth)).json()["identity"]["username"] == "bob"
        async with _browser(admin) as browser:
            await _login(browser, "bob", "pw-bob-123")
            assert (await browser.get("/api/me")).status_code == 200
            revoked = await admin.post("/api/users/bob/revoke")
            assert revoked.json() == {"sessions": 1, "tokens": 1}
            # Cached a moment ago, refused now: revocation on this server is immediate.
            assert (await browser.get("/api/me")).status_code == 403
        assert (await admin.get("/api/me", headers=auth)).status_code == 403


async def test_tokens_are_shown_once_listed_without_secret_and_revocable(
    multiuser: MultiUser,
) -> None:
    async with multiuser() as admin:
        await service(admin).add_user("ana")
        token = (await admin.post("/api/users/ana/tokens", json={"note": "laptop"})).json()
        listed = (await admin.get("/api/users/ana/tokens")).json()
        assert [t["note"] for t in listed] == ["laptop"]
        assert "token" not in listed[0]
        assert token["token"].startswith(listed[0]["hint"].rstrip("…"))
        for form in ({"Authorization": f"bearer {token['token']}"}, None):
            params = {"token": token["token"]} if form is None else None
            ok = await admin.get("/api/me", headers=form or {"Authorization": ""}, params=params)
            assert ok.json()["identity"]["username"] == "ana"
        gone = await admin.delete(f"/api/users/ana/tokens/{token['id']}")
        assert gone.status_code == 204
        again = await admin.get("/api/me", headers={"Authorization": f"token {token['token']}"})
        assert again.status_code == 403
        missing = await admin.delete(f"/api/users/ana/tokens/{token['id']}")
        assert missing.status_code == 404


async def test_a_scoped_token_is_limited_to_its_scopes(multiuser: MultiUser) -> None:
    async with multiuser() as admin:
        await service(admin).add_user("ana")
        made = await admin.post(
            "/api/users/ana/tokens", json={"scopes": ["read:contents"], "expires_in": 3600}
        )
        token = made.json()
        assert token["scopes"] == ["read:contents"]
        assert token["expires"] is not None
        headers = {"Authorization": f"token {token['token']}"}
        wanted = json.dumps({"contents": ["read", "write"], "kernels": ["execute"]})
        me = await admin.get("/api/me", headers=headers, params={"permissions": wanted})
        assert me.json()["permissions"] == {"contents": ["read"], "kernels": []}
        # Not allowed to mint itself a wider token.
        wider = await admin.post("/api/users/ana/tokens", headers=headers, json={})
        assert wider.status_code == 403


async def test_disabled_users_are_refused_at_their_next_request(multiuser: MultiUser) -> None:
    async with multiuser() as admin:
        await service(admin).add_user("ana", password="pw-ana-123")
        token = (await admin.post("/api/users/ana/tokens")).json()["token"]
        headers = {"Authorization": f"token {token}"}
        assert (await admin.get("/api/me", headers=headers)).status_code == 200
        changed = await admin.patch("/api/users/ana", json={"enabled": False})
        assert changed.json()["enabled"] is False
        assert (await admin.get("/api/me", headers=headers)).status_code == 403
        async with _browser(admin) as browser:
            assert (await _login(browser, "ana", "pw-ana-123")).status_code == 401
        await admin.patch("/api/users/ana", json={"enabled": True})
        assert (await admin.get("/api/me", headers=headers)).status_code == 200


async def test_users_see_only_themselves(multiuser: MultiUser) -> None:
    async with multiuser() as admin:
        users = service(admin)
        await users.add_user("ana")
        await users.add_user("bob")
        token = (await admin.post("/api/users/ana/tokens")).json()["token"]
        headers = {"Authorization": f"token {token}"}
        assert (await admin.get("/api/users/ana", headers=headers)).status_code == 200
        other = await admin.get("/api/users/bob/tokens", headers=headers)
        assert other.status_code == 404
        assert (await admin.post("/api/users/bob/tokens", headers=headers)).status_code == 404
        listed = await admin.get("/api/users")
        assert [u["name"] for u in listed.json()] == ["ana", "bob"]


async def test_bad_names_and_duplicates_are_refused(multiuser: MultiUser) -> None:
    async with multiuser() as admin:
        bad = await admin.post("/api/users", json={"name": "../root"})
        assert bad.status_code == 400
        assert "invalid username" in bad.json()["message"]
        assert (await admin.post("/api/users", json={"name": "ana"})).status_code == 201
        twice = await admin.post("/api/users", json={"name": "ana"})
        assert twice.status_code == 409
        assert twice.json()["reason"] == "UserExists"


async def test_log_out_everywhere_keeps_tokens(multiuser: MultiUser) -> None:
    async with multiuser() as admin:
        await service(admin).add_user("ana", password="pw-ana-123")
        token = (await admin.post("/api/users/ana/tokens")).json()["token"]
        async with _browser(admin) as one, _browser(admin) as two:
            await _login(one, "ana", "pw-ana-123")
            await _login(two, "ana", "pw-ana-123")
            sessions = await admin.get("/api/users/ana/sessions")
            assert len(sessions.json()) == 2
            ended = await admin.delete(
                "/api/users/ana/sessions", headers={"Authorization": f"token {token}"}
            )
            assert ended.json() == {"sessions": 2, "tokens": 0}
            assert (await one.get("/api/me")).status_code == 403
            assert (await two.get("/api/me")).status_code == 403
        me = await admin.get("/api/me", headers={"Authorization": f"token {token}"})
        assert me.json()["identity"]["username"] == "ana"


async def test_the_server_token_still_works_and_is_an_admin(multiuser: MultiUser) -> None:
    async with multiuser() as admin:
        me = await admin.get("/api/me", headers={"Authorization": f"token {TEST_TOKEN}"})
        assert me.json()["identity"]["admin"] is True


async def test_the_startup_log_says_kernels_run_as_the_servers_account(
    multiuser: MultiUser, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level("WARNING", logger="junction.users"):
        async with multiuser():
            pass
    assert any("runs as this server's Unix account" in r.getMessage() for r in caplog.records)


async def test_a_users_token_in_a_page_url_opens_a_session(multiuser: MultiUser) -> None:
    async with multiuser() as admin:
        await service(admin).add_user("ana")
        full = (await admin.post("/api/users/ana/tokens")).json()["token"]
        scoped = (
            await admin.post("/api/users/ana/tokens", json={"scopes": ["read:contents"]})
        ).json()["token"]
        async with _browser(admin) as browser:
            page = {"Accept": "text/html"}
            response = await browser.get("/", params={"token": full}, headers=page)
            assert response.status_code == 302
            assert "token" not in response.headers["location"]
            me = await browser.get("/api/me")
            assert me.json()["identity"]["username"] == "ana"
            assert len(await service(admin).sessions("ana")) == 1
        async with _browser(admin) as browser:
            await browser.get("/", params={"token": scoped}, headers=page)
            # A scoped token never becomes a session with the account's full rights.
            assert _cookie_name(admin) not in browser.cookies
            assert len(await service(admin).sessions("ana")) == 1


async def test_the_admin_page_lists_users_for_administrators_only(multiuser: MultiUser) -> None:
    async with multiuser() as admin:
        await service(admin).add_user("ana", display_name="Ana <Lima>")
        page = await admin.get("/users")
        assert page.status_code == 200
        assert page.headers["content-type"].startswith("text/html")
        assert 'data-name="ana"' in page.text
        assert "Ana &lt;Lima&gt;" in page.text  # escaped
        token = (await admin.post("/api/users/ana/tokens")).json()["token"]
        refused = await admin.get("/users", headers={"Authorization": f"token {token}"})
        assert refused.status_code == 403


async def test_an_issuers_user_never_takes_over_another_sources_account(
    multiuser: MultiUser,
) -> None:
    from junction.errors import Forbidden
    from junction.plugins.users.service import USERS

    async with multiuser() as admin:
        directory = admin.app.state.services.get(USERS)  # type: ignore[attr-defined]
        made = await admin.post("/api/users", json={"name": "ana", "password": "s3cret-pw"})
        assert made.status_code == 201, made.text
        made = await admin.post("/api/users", json={"name": "bo", "roles": ["admin"]})
        assert made.status_code == 201, made.text
        vouched = {"display_name": None, "avatar_url": None, "groups": (), "admin": False}

        with pytest.raises(Forbidden, match="another login method"):
            await directory.sync_external("ana", source="oidc", **vouched)
        # Made by an administrator without a password: the issuer's user logs into it.
        assert (await directory.sync_external("bo", source="oidc", **vouched)).name == "bo"
        await directory.sync_external("cy", source="oidc", **vouched)
        with pytest.raises(Forbidden, match="another login method"):
            await directory.sync_external("cy", source="hub", **vouched)
