"""The hot path: a checked token or session costs no database query; expiry and batching."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from sqlalchemy import event, update

from junction.plugins.users.schema import sessions, tokens
from junction.plugins.users.service import USERS
from junction.services import AUTH, DATABASE
from junction.testing import app_client

pytestmark = pytest.mark.anyio


@contextmanager
def counting_queries(client: httpx.AsyncClient) -> Iterator[list[str]]:
    """Record every SQL statement the app's database runs inside the block."""
    engine = client.app.state.services.get(DATABASE).engine.sync_engine  # type: ignore[attr-defined]
    statements: list[str] = []

    def record(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        statements.append(statement)

    event.listen(engine, "before_cursor_execute", record)
    try:
        yield statements
    finally:
        event.remove(engine, "before_cursor_execute", record)


async def _login(client: httpx.AsyncClient, browser: httpx.AsyncClient) -> None:
    await client.app.state.services.get(USERS).add_user("ana", password="pw-ana-123")  # type: ignore[attr-defined]
    page = await browser.get("/login")
    response = await browser.post(
        "/login",
        data={"username": "ana", "password": "pw-ana-123", "_xsrf": page.cookies["_xsrf"]},
    )
    assert response.status_code == 302


def _browser(client: httpx.AsyncClient) -> httpx.AsyncClient:
    return httpx.AsyncClient(transport=client._transport, base_url=str(client.base_url))


async def test_checked_credentials_cost_no_query(tmp_path: Any) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path / 'j.db'}"
    no_poll = {"users": {"revocation_poll_seconds": 0}}  # its query is not a request's
    async with (
        app_client(enable=["users"], database_url=url, plugin_settings=no_poll) as admin,
        _browser(admin) as browser,
    ):
        await _login(admin, browser)
        token = (await admin.post("/api/users/ana/tokens")).json()["token"]
        headers = {"Authorization": f"token {token}"}
        assert (await admin.get("/api/me", headers=headers)).status_code == 200
        assert (await browser.get("/api/me")).status_code == 200
        unknown = {"Authorization": "token jct_" + "x" * 43}
        assert (await admin.get("/api/me", headers=unknown)).status_code == 403
        with counting_queries(admin) as statements:
            for _ in range(20):
                assert (await admin.get("/api/me", headers=headers)).status_code == 200
                assert (await browser.get("/api/me")).status_code == 200
                assert (await admin.get("/api/me", headers=unknown)).status_code == 403
        assert statements == []


async def test_last_use_is_written_in_batches(tmp_path: Any) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path / 'j.db'}"
    async with app_client(enable=["users"], database_url=url) as admin, _browser(admin) as browser:
        await _login(admin, browser)
        token = (await admin.post("/api/users/ana/tokens")).json()["token"]
        assert (await admin.get("/api/me", headers={"Authorization": f"token {token}"})).is_success
        assert (await admin.get("/api/users/ana/tokens")).json()[0]["last_used"] is None
        await admin.app.state.services.get(USERS).flush()
        assert (await admin.get("/api/users/ana/tokens")).json()[0]["last_used"] is not None


@pytest.mark.parametrize("column", ["last_seen", "expires"])
async def test_idle_and_old_sessions_end(tmp_path: Any, column: str) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path / 'j.db'}"
    async with (
        app_client(
            enable=["users"], database_url=url, plugin_settings={"users": {"cache_seconds": 0}}
        ) as admin,
        _browser(admin) as browser,
    ):
        await _login(admin, browser)
        assert (await browser.get("/api/me")).status_code == 200
        users = admin.app.state.services.get(USERS)
        await users.flush()
        past = datetime.now(UTC) - timedelta(days=30)
        async with admin.app.state.services.get(DATABASE).session() as db:
            await db.execute(update(sessions).values(**{column: past}))
        assert (await browser.get("/api/me")).status_code == 403
        assert await users.sessions("ana") == []


async def test_expired_tokens_are_refused(tmp_path: Any) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path / 'j.db'}"
    async with app_client(
        enable=["users"], database_url=url, plugin_settings={"users": {"cache_seconds": 0}}
    ) as admin:
        await admin.app.state.services.get(USERS).add_user("ana")
        token = (await admin.post("/api/users/ana/tokens")).json()["token"]
        headers = {"Authorization": f"token {token}"}
        assert (await admin.get("/api/me", headers=headers)).status_code == 200
        async with admin.app.state.services.get(DATABASE).session() as db:
            await db.execute(update(tokens).values(expires=datetime.now(UTC) - timedelta(1)))
        assert (await admin.get("/api/me", headers=headers)).status_code == 403


async def test_cookie_writes_still_need_the_xsrf_header(tmp_path: Any) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path / 'j.db'}"
    async with app_client(enable=["users"], database_url=url) as admin, _browser(admin) as browser:
        await _login(admin, browser)
        refused = await browser.post("/api/users/ana/tokens")
        assert refused.status_code == 403
        assert "_xsrf" in refused.json()["message"]
        xsrf = browser.cookies["_xsrf"]
        made = await browser.post("/api/users/ana/tokens", headers={"X-XSRFToken": xsrf})
        assert made.status_code == 201
        assert admin.app.state.services.get(AUTH).identity is not None
