"""A user's token in a page URL must not swap another user's browser session."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest

from junction.plugins.users.service import USERS
from junction.services import AUTH
from junction.testing import app_client

pytestmark = pytest.mark.anyio

PAGE = {"Accept": "text/html"}


@pytest.fixture
async def admin(tmp_path: Any) -> AsyncIterator[httpx.AsyncClient]:
    """A multi-user app on SQLite with accounts ana and carol; the client is the admin."""
    async with app_client(
        enable=["users"], database_url=f"sqlite+aiosqlite:///{tmp_path / 'junction.db'}"
    ) as client:
        users = client.app.state.services.get(USERS)
        for name in ("ana", "carol"):
            await users.add_user(name)
            await users.set_password(name, f"{name}-password")
        yield client


def _browser(admin: httpx.AsyncClient) -> httpx.AsyncClient:
    return httpx.AsyncClient(transport=admin._transport, base_url=str(admin.base_url))


async def _log_in(browser: httpx.AsyncClient, name: str) -> None:
    page = await browser.get("/login")
    xsrf = page.cookies.get("_xsrf") or browser.cookies["_xsrf"]
    done = await browser.post(
        "/login", data={"username": name, "password": f"{name}-password", "_xsrf": xsrf}
    )
    assert done.status_code == 302, done.text


async def _me(browser: httpx.AsyncClient) -> str:
    name: str = (await browser.get("/api/me")).json()["identity"]["username"]
    return name


@pytest.mark.parametrize("site", ["cross-site", "same-site", None])
async def test_a_link_from_another_site_keeps_the_current_session(
    admin: httpx.AsyncClient, site: str | None
) -> None:
    users = admin.app.state.services.get(USERS)  # type: ignore[attr-defined]
    cookie_name = admin.app.state.services.get(AUTH).cookie_name  # type: ignore[attr-defined]
    carol_token = (await admin.post("/api/users/carol/tokens")).json()["token"]
    async with _browser(admin) as browser:
        await _log_in(browser, "ana")
        before = browser.cookies[cookie_name]
        headers = {**PAGE, "Referer": "http://evil.example/"}
        if site is not None:
            headers["Sec-Fetch-Site"] = site
        response = await browser.get("/lab", params={"token": carol_token}, headers=headers)
        assert response.status_code == 302
        assert "token" not in response.headers["location"]
        assert cookie_name not in response.cookies
        assert browser.cookies[cookie_name] == before
        assert await _me(browser) == "ana"
        assert await users.sessions("carol") == []


@pytest.mark.parametrize("site", ["none", "same-origin"])
async def test_a_token_typed_in_the_browser_still_switches_user(
    admin: httpx.AsyncClient, site: str
) -> None:
    users = admin.app.state.services.get(USERS)  # type: ignore[attr-defined]
    carol_token = (await admin.post("/api/users/carol/tokens")).json()["token"]
    async with _browser(admin) as browser:
        await _log_in(browser, "ana")
        headers = {**PAGE, "Sec-Fetch-Site": site}
        response = await browser.get("/lab", params={"token": carol_token}, headers=headers)
        assert response.status_code == 302
        assert await _me(browser) == "carol"
        assert len(await users.sessions("carol")) == 1


async def test_a_link_opens_a_session_in_a_browser_without_one(admin: httpx.AsyncClient) -> None:
    users = admin.app.state.services.get(USERS)  # type: ignore[attr-defined]
    carol_token = (await admin.post("/api/users/carol/tokens")).json()["token"]
    async with _browser(admin) as browser:
        headers = {**PAGE, "Sec-Fetch-Site": "cross-site"}
        response = await browser.get("/lab", params={"token": carol_token}, headers=headers)
        assert response.status_code == 302
        assert await _me(browser) == "carol"
        assert len(await users.sessions("carol")) == 1
