"""Logout from another site asks first; failed logins slow down one account or address only."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest

from junction.auth.routes import LoginThrottle
from junction.plugins.users.service import USERS
from junction.testing import TEST_TOKEN, app_client

pytestmark = pytest.mark.anyio


def _browser(client: httpx.AsyncClient, address: str = "127.0.0.1") -> httpx.AsyncClient:
    """A browser without the server token, connecting from ``address``."""
    app = client._transport.app  # type: ignore[attr-defined]  # an ASGITransport
    transport = httpx.ASGITransport(app=app, client=(address, 40000))
    return httpx.AsyncClient(transport=transport, base_url=str(client.base_url))


async def _token_login(browser: httpx.AsyncClient) -> None:
    page = await browser.get("/login")
    xsrf = page.cookies.get("_xsrf") or browser.cookies["_xsrf"]
    done = await browser.post("/login", data={"password": TEST_TOKEN, "_xsrf": xsrf})
    assert done.status_code == 302


async def _login(browser: httpx.AsyncClient, name: str, password: str) -> httpx.Response:
    page = await browser.get("/login")
    xsrf = page.cookies.get("_xsrf") or browser.cookies["_xsrf"]
    return await browser.post(
        "/login", data={"username": name, "password": password, "_xsrf": xsrf}
    )


@pytest.fixture
async def single() -> AsyncIterator[httpx.AsyncClient]:
    """A single-user app."""
    async with app_client() as client:
        yield client


@pytest.mark.parametrize("site", ["cross-site", "same-site"])
async def test_a_logout_link_on_another_site_asks_first(
    single: httpx.AsyncClient, site: str
) -> None:
    async with _browser(single) as browser:
        await _token_login(browser)
        page = await browser.get(
            "/logout", headers={"Sec-Fetch-Site": site, "Referer": "http://evil.example/"}
        )
        assert page.status_code == 200
        assert '<form method="post" action="/logout">' in page.text
        assert (await browser.get("/api/status")).status_code == 200  # still logged in
        # A cross-site form post carries no valid _xsrf.
        forged = await browser.post("/logout", data={"_xsrf": "nonce.mac"})
        assert forged.status_code == 403
        assert (await browser.get("/api/status")).status_code == 200
        confirmed = await browser.post("/logout", data={"_xsrf": browser.cookies["_xsrf"]})
        assert confirmed.status_code == 200
        assert (await browser.get("/api/status")).status_code == 403


@pytest.mark.parametrize("site", ["same-origin", "none", None])
async def test_logout_from_our_pages_or_the_address_bar_logs_out(
    single: httpx.AsyncClient, site: str | None
) -> None:
    async with _browser(single) as browser:
        await _token_login(browser)
        headers = {"Sec-Fetch-Site": site} if site else {}
        response = await browser.get("/logout", headers=headers)
        assert response.status_code == 200
        assert "Logged out" in response.text
        assert (await browser.get("/api/status")).status_code == 403


@pytest.fixture
async def multi(tmp_path: Any, monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[httpx.AsyncClient]:
    """A multi-user app with accounts bob and carol; 2 free failures per account, 4 per
    address (fewer than by default, so that the tests hash fewer passwords)."""
    monkeypatch.setattr(LoginThrottle, "ACCOUNT_FREE", 2)
    monkeypatch.setattr(LoginThrottle, "ADDRESS_FREE", 4)
    monkeypatch.setattr(LoginThrottle, "FIRST_WAIT", 600.0)  # no test outlasts it
    async with app_client(
        enable=["users"], database_url=f"sqlite+aiosqlite:///{tmp_path / 'junction.db'}"
    ) as client:
        users = client.app.state.services.get(USERS)
        for name in ("bob", "carol"):
            await users.add_user(name)
            await users.set_password(name, f"{name}-password")
        yield client


async def test_guesses_for_one_account_do_not_hold_up_another(multi: httpx.AsyncClient) -> None:
    async with _browser(multi, "10.0.0.1") as attacker, _browser(multi, "10.0.0.2") as carol:
        statuses = [(await _login(attacker, "bob", "guess")).status_code for _ in range(4)]
        assert statuses == [401, 401, 429, 429]
        refused = await _login(attacker, "bob", "guess")
        assert refused.headers["Retry-After"].isdigit()
        assert "Too many failed logins" in refused.text
        # Bob himself waits too (from anywhere), but no one else does.
        async with _browser(multi, "10.0.0.3") as bob:
            assert (await _login(bob, "bob", "bob-password")).status_code == 429
        assert (await _login(carol, "carol", "carol-password")).status_code == 302
        assert (await _login(attacker, "carol", "carol-password")).status_code == 302


async def test_guesses_from_one_address_across_accounts_slow_that_address(
    multi: httpx.AsyncClient,
) -> None:
    async with _browser(multi, "10.0.0.9") as sprayer, _browser(multi, "10.0.0.2") as carol:
        statuses = [(await _login(sprayer, f"user{n}", "guess")).status_code for n in range(6)]
        assert statuses == [401, 401, 401, 401, 429, 429]
        assert (await _login(sprayer, "carol", "carol-password")).status_code == 429
        assert (await _login(carol, "carol", "carol-password")).status_code == 302


@pytest.mark.parametrize("path", ["/login", "/logout"])
async def test_a_non_ascii_xsrf_value_is_a_403_not_a_crash(
    single: httpx.AsyncClient, path: str
) -> None:
    async with _browser(single) as browser:
        await browser.get("/login")
        response = await browser.post(path, data={"_xsrf": "Æ\u0097é", "password": "x"})
        assert response.status_code == 403
