"""``/lab/api/workspaces``: saved layouts, kept across restarts in ``lab_workspaces``
(on SQLite and PostgreSQL), and the one-time import of workspace files."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any
from urllib.parse import quote, unquote

import pytest

from .conftest import Serve, query

pytestmark = pytest.mark.anyio


@pytest.fixture
def lab_database_url(database_url: str) -> str:
    """Every test here runs on SQLite and on PostgreSQL."""
    return database_url


def workspace(workspace_id: str, **data: Any) -> dict[str, Any]:
    """A workspace body as the UI sends it."""
    return {"data": {"layout-restorer:data": data}, "metadata": {"id": workspace_id}}


async def test_unknown_workspace_is_empty_so_the_ui_can_start(serve: Serve) -> None:
    async with serve() as client:
        response = await client.get("/lab/api/workspaces/default")
        listing = await client.get("/lab/api/workspaces")
    assert response.json() == {"data": {}, "metadata": {"id": "/default"}}
    assert listing.json() == {"workspaces": {"ids": [], "values": []}}


async def test_saved_workspace_comes_back_after_a_restart(
    serve: Serve, tmp_path: Path, database_url: str
) -> None:
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
    assert [row[0] for row in await query(database_url, "SELECT key FROM lab_workspaces")] == [
        "default"
    ]
    assert not (tmp_path / "lab-data" / "workspaces").exists()


async def test_metadata_id_may_carry_a_slash_or_escapes(serve: Serve) -> None:
    async with serve() as client:
        first = await client.put("/lab/api/workspaces/team", json=workspace("/team"))
        second = await client.put("/lab/api/workspaces/a b", json=workspace("a%20b"))
    assert (first.status_code, second.status_code) == (204, 204)


async def test_odd_ids_are_kept_under_their_escaped_key(serve: Serve, database_url: str) -> None:
    odd = "..%2F..%2Fescape"
    async with serve() as client:
        saved = await client.put(f"/lab/api/workspaces/{odd}", json=workspace("../../escape"))
        got = await client.get(f"/lab/api/workspaces/{odd}")
    assert saved.status_code == 204
    assert got.json()["metadata"]["id"] == "../../escape"
    keys = [row[0] for row in await query(database_url, "SELECT key FROM lab_workspaces")]
    assert keys == ["%2E%2E%2F%2E%2E%2Fescape"]


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
async def test_any_id_is_one_row_and_no_file_is_written(
    serve: Serve, tmp_path: Path, database_url: str, url_id: str, server_id: str
) -> None:
    before = set(tmp_path.rglob("*"))
    async with serve() as client:
        saved = await client.put(
            f"/lab/api/workspaces/{url_id}", json=workspace(quote(server_id, safe=""))
        )
        got = await client.get(f"/lab/api/workspaces/{url_id}")
        listing = (await client.get("/lab/api/workspaces")).json()["workspaces"]
        deleted = await client.delete(f"/lab/api/workspaces/{url_id}")
    after = set(tmp_path.rglob("*"))
    assert saved.status_code == 204
    assert unquote(got.json()["metadata"]["id"]) == server_id
    assert len(listing["ids"]) == 1
    assert deleted.status_code == 204
    assert after == before  # nothing written to disk
    assert await query(database_url, "SELECT key FROM lab_workspaces") == []


async def test_overlong_workspace_ids_are_refused(serve: Serve) -> None:
    long_id = "w" * 201
    async with serve() as client:
        response = await client.put(f"/lab/api/workspaces/{long_id}", json=workspace(long_id))
    assert response.status_code == 400
    assert "200" in response.json()["message"]


def write_workspace_file(directory: Path, key: str, body: dict[str, Any]) -> None:
    """A workspace file as JupyterLab and earlier Junction versions wrote them."""
    directory.mkdir(parents=True, exist_ok=True)
    (directory / f"{key}.jupyterlab-workspace").write_text(json.dumps(body))


async def test_workspace_files_are_imported_once(serve: Serve, tmp_path: Path) -> None:
    directory = tmp_path / "lab-data" / "workspaces"
    write_workspace_file(directory, "default", workspace("default", main={"current": "a"}))
    write_workspace_file(directory, "a%2Eb", workspace("a.b"))
    (directory / "broken.jupyterlab-workspace").write_text("{not json")
    async with serve() as client:
        first = (await client.get("/lab/api/workspaces")).json()["workspaces"]
        await client.delete("/lab/api/workspaces/a.b")
    write_workspace_file(directory, "later", workspace("later"))
    async with serve() as client:
        second = (await client.get("/lab/api/workspaces")).json()["workspaces"]
    assert first["ids"] == ["a.b", "default"]
    assert first["values"][1]["data"] == {"layout-restorer:data": {"main": {"current": "a"}}}
    assert first["values"][1]["metadata"]["last_modified"].endswith("Z")
    # The import ran once: a deleted workspace stays deleted, a new file is not read.
    assert second["ids"] == ["default"]
    assert (directory / "a%2Eb.jupyterlab-workspace").exists()  # files are left alone


async def test_no_import_into_a_table_that_has_workspaces(
    serve: Serve, tmp_path: Path, database_url: str
) -> None:
    async with serve() as client:
        await client.put("/lab/api/workspaces/mine", json=workspace("mine"))
    await query(database_url, "DELETE FROM lab_imports")
    write_workspace_file(tmp_path / "lab-data" / "workspaces", "old", workspace("old"))
    async with serve() as client:
        ids = (await client.get("/lab/api/workspaces")).json()["workspaces"]["ids"]
    assert ids == ["mine"]
    imports = await query(database_url, "SELECT name FROM lab_imports ORDER BY name")
    assert imports == [("user-settings",), ("workspaces",)]
