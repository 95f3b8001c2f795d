"""``/lab/api/workspaces``: saved layouts, kept across restarts."""

from __future__ import annotations

from pathlib import Path
from typing import Any
from urllib.parse import quote, unquote

import pytest

from .conftest import Serve

pytestmark = pytest.mark.anyio


def workspace(workspace_id: str, **data: Any) -> dict[str, Any]:
    """A workspace body as the UI sends it."""
    return {"data": {"layout-restorer:data": data}, "metadata": {"id": workspace_id}}


async def test_unknown_workspace_is_empty_so_the_ui_can_start(serve: Serve) -> None:
    async with serve() as client:
        response = await client.get("/lab/api/workspaces/default")
        listing = await client.get("/lab/api/workspaces")
    assert response.json() == {"data": {}, "metadata": {"id": "/default"}}
    assert listing.json() == {"workspaces": {"ids": [], "values": []}}


async def test_saved_workspace_comes_back_after_a_restart(serve: Serve, tmp_path: Path) -> None:
    body = workspace("default", main={"current": "notebook:Untitled.ipynb"})
    async with serve() as client:
        saved = await client.put("/lab/api/workspaces/default", json=body)
        assert saved.status_code == 204
    async with serve() as client:
        got = (await client.get("/lab/api/workspaces/default")).json()
        listing = (await client.get("/lab/api/workspaces")).json()["workspaces"]
    assert got["data"] == body["data"]
    assert got["metadata"]["id"] == "default"
    assert got["metadata"]["last_modified"].endswith("Z")
    assert listing["ids"] == ["default"]
    assert listing["values"][0]["data"] == body["data"]
    files = [path.name for path in (tmp_path / "lab-data" / "workspaces").iterdir()]
    assert files == ["default.jupyterlab-workspace"]


async def test_metadata_id_may_carry_a_slash_or_escapes(serve: Serve) -> None:
    async with serve() as client:
        first = await client.put("/lab/api/workspaces/team", json=workspace("/team"))
        second = await client.put("/lab/api/workspaces/a b", json=workspace("a%20b"))
    assert (first.status_code, second.status_code) == (204, 204)


async def test_odd_ids_stay_inside_the_workspaces_dir(serve: Serve, tmp_path: Path) -> None:
    odd = "..%2F..%2Fescape"
    async with serve() as client:
        saved = await client.put(f"/lab/api/workspaces/{odd}", json=workspace("../../escape"))
        got = await client.get(f"/lab/api/workspaces/{odd}")
    assert saved.status_code == 204
    assert got.json()["metadata"]["id"] == "../../escape"
    files = [p.name for p in (tmp_path / "lab-data" / "workspaces").iterdir()]
    assert files == ["%2E%2E%2F%2E%2E%2Fescape.jupyterlab-workspace"]


@pytest.mark.parametrize(
    "body",
    [
        {"data": {}, "metadata": {"id": "other"}},
        {"data": [], "metadata": {"id": "w"}},
        {"data": {}},
        {"data": {}, "metadata": {"id": 3}},
    ],
)
async def test_bad_workspace_bodies_are_refused(serve: Serve, body: dict[str, Any]) -> None:
    async with serve() as client:
        response = await client.put("/lab/api/workspaces/w", json=body)
    assert response.status_code == 400


async def test_non_json_workspace_body_is_refused(serve: Serve) -> None:
    async with serve() as client:
        response = await client.put("/lab/api/workspaces/w", content=b"{oops")
    assert response.status_code == 400
    assert "not valid JSON" in response.json()["message"]


async def test_delete_forgets_a_workspace(serve: Serve) -> None:
    async with serve() as client:
        await client.put("/lab/api/workspaces/gone", json=workspace("gone"))
        deleted = await client.delete("/lab/api/workspaces/gone")
        again = await client.delete("/lab/api/workspaces/gone")
        got = await client.get("/lab/api/workspaces/gone")
    assert deleted.status_code == 204
    assert again.status_code == 404
    assert got.json()["data"] == {}


@pytest.mark.parametrize(
    ("url_id", "server_id"),
    [
        ("%2E%2E", ".."),
        ("%2E", "."),
        ("%2E%2E%2F%2E%2E%2F%2E%2E%2Fescape", "../../../escape"),
        ("a/%2E%2E/%2E%2E/b", "a/../../b"),
        ("%5C..%5C..%5Cwin", "\\..\\..\\win"),
        ("nul%00byte", "nul\x00byte"),
        ("%2Fetc%2Fpasswd", "/etc/passwd"),
        ("~", "~"),
        ("%25%32%45", "%2E"),
        ("caf%C3%A9", "café"),
    ],
)
async def test_any_id_is_one_flat_file_inside_the_workspaces_dir(
    serve: Serve, tmp_path: Path, url_id: str, server_id: str
) -> None:
    directory = tmp_path / "lab-data" / "workspaces"
    before = {p for p in tmp_path.rglob("*") if directory not in p.parents}
    async with serve() as client:
        saved = await client.put(
            f"/lab/api/workspaces/{url_id}", json=workspace(quote(server_id, safe=""))
        )
        got = await client.get(f"/lab/api/workspaces/{url_id}")
        listing = (await client.get("/lab/api/workspaces")).json()["workspaces"]
        deleted = await client.delete(f"/lab/api/workspaces/{url_id}")
    after = {p for p in tmp_path.rglob("*") if directory not in p.parents}
    assert saved.status_code == 204
    assert unquote(got.json()["metadata"]["id"]) == server_id
    assert len(listing["ids"]) == 1
    assert deleted.status_code == 204
    assert after - before == {directory, directory.parent}  # nothing written elsewhere
    assert list(directory.iterdir()) == []


async def test_overlong_workspace_ids_are_refused(serve: Serve) -> None:
    long_id = "w" * 201
    async with serve() as client:
        response = await client.put(f"/lab/api/workspaces/{long_id}", json=workspace(long_id))
    assert response.status_code == 400
    assert "200" in response.json()["message"]
