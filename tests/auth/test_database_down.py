"""While the database is down, a credential the server has not checked recently cannot be
checked: the request gets a 503 with the usual JSON body (and a WebSocket handshake is refused
with it), the log gets a warning line and no traceback, and the credential works again once
the database is back. A credential checked recently keeps working from memory.

A real multi-user ``junction`` server on a PostgreSQL server of the test's own, which the
test stops and starts.
"""

from __future__ import annotations

import secrets
import time
from pathlib import Path
from typing import Any

import anyio
import httpx
import pytest
from websockets.asyncio.client import connect
from websockets.exceptions import InvalidStatus

from junction.testing import TEST_TOKEN, PostgresCluster, ServerProcess

pytestmark = pytest.mark.anyio

ADMIN = {"Authorization": f"token {TEST_TOKEN}"}
RANDOM_TOKENS = 5


def token_headers(server: ServerProcess, name: str) -> dict[str, str]:
    """Headers carrying a new API token of ``name``."""
    issued = httpx.post(f"{server.url}api/users/{name}/tokens", headers=ADMIN, timeout=30)
    assert issued.status_code == 201, issued.text
    return {"Authorization": f"token {issued.json()['token']}"}


async def test_uncached_credentials_get_503_without_traceback_while_the_database_is_down(
    own_postgres: PostgresCluster, tmp_path: Path
) -> None:
    args = ["--port", "0", "--ip", "127.0.0.1", "--profile", "none", "--enable", "users"]
    args += ["--enable", "terminals", "--root-dir", str(tmp_path)]
    args += ["--set", f"database_url={own_postgres.url()}"]
    with ServerProcess(args, log_path=tmp_path / "server.log") as server:
        created = httpx.post(f"{server.url}api/users", json={"name": "ana"}, headers=ADMIN)
        assert created.status_code == 201, created.text
        cached = token_headers(server, "ana")
        uncached = token_headers(server, "ana")
        assert httpx.get(f"{server.url}api/me", headers=cached).status_code == 200
        ws_url = server.url.replace("http", "ws", 1) + "terminals/websocket/1"
        before = len(server.log().splitlines())

        own_postgres.stop()
        try:
            me = httpx.get(f"{server.url}api/me", headers=cached, timeout=30)
            down = httpx.get(f"{server.url}api/me", headers=uncached, timeout=30)
            guessed = [
                httpx.get(
                    f"{server.url}api/me",
                    headers={"Authorization": f"token jct_{secrets.token_urlsafe(32)}"},
                    timeout=30,
                )
                for _ in range(RANDOM_TOKENS)
            ]
            with pytest.raises(InvalidStatus) as refused:
                async with connect(ws_url, additional_headers=uncached, open_timeout=30):
                    pass  # pragma: no cover - the handshake is refused
        finally:
            own_postgres.start()
        log = server.log()
        added = log.splitlines()[before:]

        back = await eventually_ok(f"{server.url}api/me", uncached)

    assert me.status_code == 200  # checked recently: answered from memory
    assert down.status_code == 503, down.text
    assert down.json()["reason"] == "DatabaseUnavailable"
    assert down.json()["message"]
    assert {r.status_code for r in guessed} == {503}
    assert refused.value.response.status_code == 503
    assert b"DatabaseUnavailable" in refused.value.response.body
    assert "Traceback" not in "\n".join(added)
    requests = 2 + RANDOM_TOKENS
    assert len(added) <= 4 * requests, "\n".join(added)
    assert back.json()["identity"]["username"] == "ana"


async def eventually_ok(url: str, headers: dict[str, str]) -> Any:
    """GET ``url`` until it answers 200 (the database's pool reconnects); within 30 s."""
    deadline = time.monotonic() + 30
    async with httpx.AsyncClient(timeout=30) as client:
        while True:
            response = await client.get(url, headers=headers)
            if response.status_code == 200 or time.monotonic() > deadline:
                assert response.status_code == 200, response.text
                return response
            await anyio.sleep(0.1)
