"""Per-user home folders: each user reaches their home, folders shared with them, nothing
else (404); administrators reach everything; single-user mode is unchanged.

In process, on SQLite and on PostgreSQL (the ``multiuser`` fixture).
"""

from __future__ import annotations

import json
import re
import stat
from pathlib import Path

import httpx
import pytest
from tests.plugins.users.conftest import MultiUser

pytestmark = pytest.mark.anyio


async def _token(admin: httpx.AsyncClient, name: str, **extra: object) -> dict[str, str]:
    created = await admin.post("/api/users", json={"name": name, **extra})
    assert created.status_code == 201, created.text
    token = (await admin.post(f"/api/users/{name}/tokens")).json()["token"]
    return {"Authorization": f"token {token}"}


def _names(listing: httpx.Response) -> list[str]:
    assert listing.status_code == 200, listing.text
    return sorted(entry["name"] for entry in listing.json()["content"])


async def test_users_reach_only_their_home(multiuser: MultiUser, tmp_path: Path) -> None:
    (tmp_path / "secret.txt").write_text("admin only")
    async with multiuser("contents", root_dir=tmp_path) as admin:
        ana = await _token(admin, "ana")
        bob = await _token(admin, "bob")

        # First use makes the home, private to the server's account.
        saved = await admin.put(
            "/api/contents/home/ana/a.txt",
            headers=ana,
            json={"type": "file", "format": "text", "content": "ana's"},
        )
        assert saved.status_code == 201, saved.text
        home = tmp_path / "home" / "ana"
        assert stat.S_IMODE(home.stat().st_mode) == 0o700
        assert (home / "a.txt").read_text() == "ana's"

        # Bob gets his own home; Ana's files look missing to him, everywhere.
        assert _names(await admin.get("/api/contents/home", headers=bob)) == ["bob"]
        assert _names(await admin.get("/api/contents", headers=bob)) == ["home"]
        for method, path in [
            ("GET", "/api/contents/home/ana/a.txt"),
            ("GET", "/api/contents/home/ana"),
            ("GET", "/api/contents/home/ana/a.txt/checkpoints"),
            ("POST", "/api/contents/home/ana/a.txt/checkpoints"),
            ("POST", "/api/contents/home/ana/a.txt/trust"),
            ("DELETE", "/api/contents/home/ana/a.txt"),
            ("GET", "/api/contents/secret.txt"),
            ("GET", "/files/home/ana/a.txt"),
            ("GET", "/view/home/ana/a.txt"),
            ("GET", "/files/secret.txt"),
            ("GET", "/api/contents/home/bob/../ana/a.txt"),
            ("GET", "/api/contents/home/bob/%2E%2E/ana/a.txt"),
        ]:
            response = await admin.request(method, path, headers=bob)
            assert response.status_code == 404, (method, path, response.text)
            assert "ana's" not in response.text
        copied = await admin.post(
            "/api/contents/home/bob", headers=bob, json={"copy_from": "home/ana/a.txt"}
        )
        assert copied.status_code == 404
        moved = await admin.patch(
            "/api/contents/home/bob/x.txt", headers=bob, json={"path": "home/ana/x.txt"}
        )
        assert moved.status_code == 404
        resolved = await admin.get("/api/resolvePath?path=home/ana/a.txt", headers=bob)
        assert resolved.json()["resolved"] == []

        # Outside the home nothing can be written: new paths are out of reach (404), the
        # folders leading to the home are visible but read-only (403).
        outside = await admin.put(
            "/api/contents/x.txt",
            headers=bob,
            json={"type": "file", "format": "text", "content": ""},
        )
        assert outside.status_code == 404
        assert not (tmp_path / "x.txt").exists()
        assert (await admin.post("/api/contents/home", headers=bob, json={})).status_code == 403

        # Ana reads hers, by every route.
        assert (await admin.get("/api/contents/home/ana/a.txt", headers=ana)).status_code == 200
        assert (await admin.get("/files/home/ana/a.txt", headers=ana)).text == "ana's"
        found = await admin.get("/api/resolvePath?path=home/ana/a.txt", headers=ana)
        assert found.json()["resolved"] == [{"scope": "server", "path": "home/ana/a.txt"}]

        # The administrator sees everything.
        assert _names(await admin.get("/api/contents")) == ["home", "secret.txt"]
        assert _names(await admin.get("/api/contents/home")) == ["ana", "bob"]
        assert (await admin.get("/api/contents/home/ana/a.txt")).status_code == 200


async def test_paginated_listing_above_a_home_shows_only_the_way(
    multiuser: MultiUser, tmp_path: Path
) -> None:
    for name in ("zed", "yan", "xia"):
        (tmp_path / "home" / name).mkdir(parents=True)
    async with multiuser("contents", root_dir=tmp_path) as admin:
        ana = await _token(admin, "ana")
        page = await admin.get("/api/contents/home?limit=100", headers=ana)
        assert page.status_code == 200, page.text
        assert [e["name"] for e in page.json()["content"]] == ["ana"]


async def test_sharing_a_folder_read_only_and_read_write(
    multiuser: MultiUser, tmp_path: Path
) -> None:
    async with multiuser("contents", root_dir=tmp_path) as admin:
        ana = await _token(admin, "ana")
        bob = await _token(admin, "bob")
        cyd = await _token(admin, "cyd", groups=["lab"])
        made = await admin.put(
            "/api/contents/home/ana/data", headers=ana, json={"type": "directory"}
        )
        assert made.status_code == 201, made.text
        await admin.put(
            "/api/contents/home/ana/data/d.txt",
            headers=ana,
            json={"type": "file", "format": "text", "content": "shared"},
        )
        # Bob may not share Ana's folder: it looks missing to him.
        refused = await admin.put(
            "/api/users/shares", headers=bob, json={"path": "home/ana/data", "user": "bob"}
        )
        assert refused.status_code == 404
        # Ana shares it with Bob read-only.
        shared = await admin.put(
            "/api/users/shares", headers=ana, json={"path": "home/ana/data", "user": "bob"}
        )
        assert shared.status_code == 200, shared.text
        share_id = shared.json()["id"]
        assert shared.json()["access"] == "read"
        got = await admin.get("/api/contents/home/ana/data/d.txt", headers=bob)
        assert got.status_code == 200
        assert got.json()["content"] == "shared"
        assert _names(await admin.get("/api/contents/home", headers=bob)) == ["ana", "bob"]
        assert _names(await admin.get("/api/contents/home/ana", headers=bob)) == ["data"]
        write = await admin.put(
            "/api/contents/home/ana/data/d.txt",
            headers=bob,
            json={"type": "file", "format": "text", "content": "bob was here"},
        )
        assert write.status_code == 403, write.text
        assert (
            await admin.delete("/api/contents/home/ana/data/d.txt", headers=bob)
        ).status_code == 403
        # Cyd is not in it; a group share with read-write lets Cyd write.
        assert (
            await admin.get("/api/contents/home/ana/data/d.txt", headers=cyd)
        ).status_code == 404
        group = await admin.put(
            "/api/users/shares",
            headers=ana,
            json={"path": "home/ana/data", "group": "lab", "access": "write"},
        )
        assert group.status_code == 200, group.text
        wrote = await admin.put(
            "/api/contents/home/ana/data/c.txt",
            headers=cyd,
            json={"type": "file", "format": "text", "content": "cyd"},
        )
        assert wrote.status_code == 201, wrote.text
        assert (tmp_path / "home/ana/data/c.txt").read_text() == "cyd"
        # Listing shares; withdrawing Bob's share makes the folder missing again.
        listed = (await admin.get("/api/users/shares", headers=bob)).json()
        assert [s["id"] for s in listed] == [share_id]
        assert len((await admin.get("/api/users/shares")).json()) == 2
        assert (await admin.delete(f"/api/users/shares/{share_id}", headers=ana)).status_code == 204
        assert (
            await admin.get("/api/contents/home/ana/data/d.txt", headers=bob)
        ).status_code == 404
        bad = await admin.put("/api/users/shares", headers=ana, json={"path": "home/ana/data"})
        assert bad.status_code in (400, 422)


async def test_file_browser_opens_in_the_home(multiuser: MultiUser, tmp_path: Path) -> None:
    async with multiuser("contents", "frontend", root_dir=tmp_path) as admin:
        ana = await _token(admin, "ana")
        page = await admin.get("/lab", headers=ana)
        assert page.status_code == 200, page.text
        assert _page_config(page.text)["preferredPath"] == "/home/ana"
        mine = await admin.get("/lab")
        assert _page_config(mine.text)["preferredPath"] == "/"


def _page_config(html: str) -> dict[str, object]:
    match = re.search(
        r'<script id="jupyter-config-data" type="application/json">(.*?)</script>', html, re.S
    )
    assert match is not None, html[:500]
    config: dict[str, object] = json.loads(match.group(1))
    return config


async def test_single_user_mode_is_unchanged(tmp_path: Path) -> None:
    from junction.testing import app_client

    (tmp_path / "top.txt").write_text("x")
    async with app_client(enable=["contents"], root_dir=tmp_path) as client:
        assert _names(await client.get("/api/contents")) == ["top.txt"]
        assert not (tmp_path / "home").exists()


async def test_nbconvert_downloads_follow_the_homes(multiuser: MultiUser, tmp_path: Path) -> None:
    async with multiuser("contents", "frontend", "lab", root_dir=tmp_path) as admin:
        ana = await _token(admin, "ana")
        bob = await _token(admin, "bob")
        made = await admin.post("/api/contents/home/ana", headers=ana, json={"type": "notebook"})
        assert made.status_code == 201, made.text
        path = made.json()["path"]
        theirs = await admin.get(f"/nbconvert/html/{path}", headers=bob)
        assert theirs.status_code == 404, theirs.text
        hers = await admin.get(f"/nbconvert/html/{path}", headers=ana)
        assert hers.status_code == 200, hers.text
