"""API tokens with an end: the browser session a token opens ends with the token, and a
token's requested lifetime is bounded (in process, on SQLite and PostgreSQL; the wire test
of the session's WebSockets is in tests/auth/test_socket_expiry.py)."""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

import httpx
import pytest
from tests.plugins.users.conftest import MultiUser

from junction.plugins.users.models import MAX_EXPIRES_IN

pytestmark = pytest.mark.anyio


def _browser(client: httpx.AsyncClient) -> httpx.AsyncClient:
    """A second client on the same app without the server token (a browser)."""
    return httpx.AsyncClient(transport=client._transport, base_url=str(client.base_url))


async def _token(admin: httpx.AsyncClient, name: str, **body: Any) -> dict[str, Any]:
    made = await admin.post(f"/api/users/{name}/tokens", json=body)
    assert made.status_code == 201, made.text
    return made.json()  # type: ignore[no-any-return]  # a JSON object


async def test_a_session_opened_with_an_expiring_token_ends_no_later_than_it(
    multiuser: MultiUser,
) -> None:
    async with multiuser() as admin:
        assert (await admin.post("/api/users", json={"name": "ana"})).status_code == 201
        expiring = await _token(admin, "ana", expires_in=3600)
        lasting = await _token(admin, "ana")
        for token in (expiring, lasting):
            async with _browser(admin) as browser:
                login = await browser.get(
                    "/", params={"token": token["token"]}, headers={"Accept": "text/html"}
                )
                assert login.status_code == 302, login.text
                assert (await browser.get("/api/me")).status_code == 200
        sessions = (await admin.get("/api/users/ana/sessions")).json()
        assert len(sessions) == 2
        ends = sorted(datetime.fromisoformat(session["expires"]) for session in sessions)
        token_end = datetime.fromisoformat(expiring["expires"])
        assert abs((ends[0] - token_end).total_seconds()) < 1.0
        assert (ends[1] - token_end).total_seconds() > 3600  # a lasting token: a full session


@pytest.mark.parametrize(
    "expires_in", [1e12, MAX_EXPIRES_IN + 1, "Infinity", "NaN", 0, -5], ids=repr
)
async def test_a_token_lifetime_out_of_bounds_is_a_clear_client_error(
    multiuser: MultiUser, expires_in: float | str
) -> None:
    async with multiuser() as admin:
        assert (await admin.post("/api/users", json={"name": "bob"})).status_code == 201
        body = json.dumps({"note": "x"})[:-1] + f', "expires_in": {expires_in}}}'
        refused = await admin.post(
            "/api/users/bob/tokens", content=body, headers={"Content-Type": "application/json"}
        )
        assert refused.status_code == 400, refused.text
        assert "expires_in" in refused.json()["message"]
        assert (await admin.get("/api/users/bob/tokens")).json() == []
        longest = await _token(admin, "bob", expires_in=MAX_EXPIRES_IN)
        assert longest["expires"] is not None
