"""``/api/config/{section}``: free-form JSON sections kept as files."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from .conftest import Serve

pytestmark = pytest.mark.anyio

SECTION = "/api/config/jupyterlabapputilsextensionannouncements"


async def test_unwritten_section_is_empty(serve: Serve) -> None:
    async with serve() as client:
        response = await client.get(SECTION)
    assert response.status_code == 200
    assert response.json() == {}


async def test_patch_merges_deeply_and_null_removes(serve: Serve, tmp_path: Path) -> None:
    async with serve() as client:
        first = await client.patch(SECTION, json={"news": {"enabled": True}, "x": 1})
        second = await client.patch(SECTION, json={"news": {"checked": 2}, "x": None})
        got = await client.get(SECTION)
    assert first.json() == {"news": {"enabled": True}, "x": 1}
    assert second.json() == {"news": {"enabled": True, "checked": 2}}
    assert got.json() == second.json()
    stored = tmp_path / "lab-data" / "config" / "jupyterlabapputilsextensionannouncements.json"
    assert json.loads(stored.read_text()) == second.json()


async def test_put_replaces_and_survives_a_restart(serve: Serve) -> None:
    async with serve() as client:
        await client.patch("/api/config/notebook", json={"old": True})
        response = await client.put("/api/config/notebook", json={"new": True})
        assert response.status_code == 204
    async with serve() as client:
        assert (await client.get("/api/config/notebook")).json() == {"new": True}


async def test_bad_section_names_and_bodies_are_refused(serve: Serve) -> None:
    async with serve() as client:
        bad_name = await client.get("/api/config/not-a-word")
        not_object = await client.patch("/api/config/ok", json=[1, 2])
        not_json = await client.put("/api/config/ok", content=b"nope")
    assert bad_name.status_code == 404
    assert not_object.status_code == 400
    assert not_json.status_code == 400


async def test_config_needs_a_login(serve: Serve) -> None:
    async with serve(authenticated=False) as client:
        assert (await client.get("/api/config/notebook")).status_code == 403


@pytest.mark.parametrize(
    "section",
    ["%2E%2E", "..%2F..%2Fescape", "a.b", "%2Fetc%2Fpasswd", "caf%C3%A9", "a%00", "a%5Cb", "a%20b"],
)
async def test_section_names_are_plain_words_kept_inside_the_config_dir(
    serve: Serve, tmp_path: Path, section: str
) -> None:
    async with serve() as client:
        got = await client.get(f"/api/config/{section}")
        patched = await client.patch(f"/api/config/{section}", json={"x": 1})
        put = await client.put(f"/api/config/{section}", json={"x": 1})
    assert (got.status_code, patched.status_code, put.status_code) == (404, 404, 404)
    assert not (tmp_path / "lab-data" / "config").exists()
    assert not list(tmp_path.rglob("escape*"))
