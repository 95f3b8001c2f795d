"""The terminals REST API in-process, over real PTYs: status codes and bodies as Jupyter's."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx
import pytest

from junction.plugins.terminals import TERMINALS
from junction.plugins.terminals.manager import PtyTerminals
from junction.reaper import session_alive
from junction.services import SERVER
from junction.testing import app_client

from .conftest import SHELL

pytestmark = pytest.mark.anyio


def _client(root: Path, **settings: Any) -> Any:
    return app_client(
        enable=["terminals"],
        root_dir=root,
        plugin_settings={"terminals": {"shell_command": SHELL, **settings}},
    )


def _service(client: httpx.AsyncClient) -> PtyTerminals:
    service = client.app.state.services.get(TERMINALS)  # type: ignore[attr-defined]  # see app_client
    assert isinstance(service, PtyTerminals)
    return service


async def test_create_list_get_delete(tmp_path: Path) -> None:
    async with _client(tmp_path) as client:
        assert (await client.get("/api/terminals")).json() == []
        created = await client.post("/api/terminals")
        assert created.status_code == 200
        model = created.json()
        assert set(model) == {"name", "last_activity"}
        assert model["name"] == "1"
        assert model["last_activity"].endswith("Z")
        assert (await client.get("/api/terminals")).json() == [model]
        got = await client.get("/api/terminals/1")
        assert got.status_code == 200
        assert got.json()["name"] == "1"
        pid = _service(client).terminal("1").pid
        deleted = await client.delete("/api/terminals/1")
        assert deleted.status_code == 204
        assert deleted.content == b""
        assert not session_alive(pid)
        assert (await client.get("/api/terminals")).json() == []


async def test_post_takes_an_empty_body_a_name_and_ignores_unknown_keys(tmp_path: Path) -> None:
    async with _client(tmp_path) as client:
        assert (await client.post("/api/terminals", json={})).json()["name"] == "1"
        named = await client.post("/api/terminals", json={"name": "dev", "extra": 1})
        assert named.status_code == 200
        assert named.json()["name"] == "dev"


async def test_unknown_terminals_get_404_with_jupyters_message(tmp_path: Path) -> None:
    async with _client(tmp_path) as client:
        for method in ("GET", "DELETE"):
            response = await client.request(method, "/api/terminals/x")
            assert response.status_code == 404
            assert response.json()["message"] == "Terminal not found: x"
            assert "reason" in response.json()


@pytest.mark.parametrize(
    ("body", "status", "reason"),
    [
        ({"cwd": ".."}, 400, "cwd outside the root"),
        ({"cwd": "/etc"}, 400, "cwd outside the root"),
        ({"cwd": "missing"}, 400, "No such directory"),
        ({"name": "a/b"}, 400, "Invalid name"),
        ({"name": 5}, 400, None),
    ],
)
async def test_bad_bodies_get_4xx_with_a_json_reason(
    tmp_path: Path, body: dict[str, Any], status: int, reason: str | None
) -> None:
    async with _client(tmp_path) as client:
        response = await client.post("/api/terminals", json=body)
        assert response.status_code == status, response.text
        assert "message" in response.json()
        if reason is not None:
            assert response.json()["reason"] == reason
        assert (await client.get("/api/terminals")).json() == []


async def test_a_taken_name_gets_409(tmp_path: Path) -> None:
    async with _client(tmp_path) as client:
        await client.post("/api/terminals", json={"name": "a"})
        response = await client.post("/api/terminals", json={"name": "a"})
        assert response.status_code == 409
        assert response.json()["message"] == "Terminal already exists: a"


async def test_a_shell_that_cannot_start_gets_503(tmp_path: Path) -> None:
    async with _client(tmp_path, shell_command=[str(tmp_path / "no-such-shell")]) as client:
        response = await client.post("/api/terminals")
        assert response.status_code == 503
        assert response.json()["reason"] == "Shell failed to start"
        assert (await client.get("/api/terminals")).json() == []


async def test_the_terminals_gauge_and_activity_feed_the_server_state(tmp_path: Path) -> None:
    async with _client(tmp_path) as client:
        state = client.app.state.services.get(SERVER)
        assert state.gauge("terminals") == 0
        await client.post("/api/terminals")
        await client.post("/api/terminals")
        assert state.gauge("terminals") == 2
        terminal = _service(client).terminal("1")
        terminal.last_activity += 3600  # a terminal active after the last API call
        assert state.last_activity.timestamp() == pytest.approx(terminal.last_activity)
        await client.delete("/api/terminals/1")
        assert state.gauge("terminals") == 1


async def test_the_api_needs_a_token(tmp_path: Path) -> None:
    async with app_client(enable=["terminals"], root_dir=tmp_path, authenticated=False) as client:
        assert (await client.get("/api/terminals")).status_code == 403
        assert (await client.post("/api/terminals")).status_code == 403
