"""Links in a listing, multi-user mode: a link is listed only where the caller could read
through it, so a listing tells nothing (name, size, time, count) of what lies out of reach.

Each in-process case runs through the fast twin and through the FastAPI route (twins off),
which must answer alike; one case runs a real uvicorn server.
"""

from __future__ import annotations

import os
from pathlib import Path

import anyio
import httpx
import pytest
from tests.plugins.contents.test_review_fixes import _multiuser, _pages

from junction.testing import TEST_TOKEN, serve_in_thread, user_headers

pytestmark = pytest.mark.anyio

OUT_OF_REACH = ("l_bob", "l_top", "l_root", "l_gone")
"""ana's links to bob's file, to a file of the root outside every home, to the root, and
to a file of bob's that does not exist."""

ANA_SEES = ["a.txt", "l_own", "l_shared"]
ADMIN_SEES = ["a.txt", "l_bob", "l_own", "l_root", "l_shared", "l_top"]


async def _links_in_anas_home(root: Path, admin: httpx.AsyncClient) -> dict[str, str]:
    """ana's home with a file and the links above, bob's with a secret and a folder he
    shares with ana; ana's headers."""
    ana = await user_headers(admin, "ana")
    bob = await user_headers(admin, "bob")
    for path, headers, text in [
        ("home/ana/a.txt", ana, "ana's"),
        ("home/bob/bobsecret.txt", bob, "bob's secret"),
    ]:
        made = await admin.put(
            f"/api/contents/{path}",
            headers=headers,
            json={"type": "file", "format": "text", "content": text},
        )
        assert made.status_code == 201, made.text
    folder = await admin.put(
        "/api/contents/home/bob/shared", headers=bob, json={"type": "directory"}
    )
    assert folder.status_code == 201, folder.text
    shared = await admin.put(
        "/api/users/shares", headers=bob, json={"path": "home/bob/shared", "user": "ana"}
    )
    assert shared.status_code == 200, shared.text
    (root / "topsecret.txt").write_text("top secret")
    home = root / "home" / "ana"
    for name, target in [
        ("l_bob", "../bob/bobsecret.txt"),
        ("l_top", "../../topsecret.txt"),
        ("l_root", "../.."),
        ("l_gone", "../bob/nothing.txt"),
        ("l_own", "a.txt"),
        ("l_shared", "../bob/shared"),
    ]:
        os.symlink(target, home / name)
    return ana


def _leaks(response: httpx.Response) -> list[str]:
    return [name for name in OUT_OF_REACH if name in response.text]


async def test_a_listing_shows_only_the_links_one_may_read_through(
    tmp_path: Path, fast: bool
) -> None:
    root = tmp_path / "root"
    root.mkdir()
    async with _multiuser(root) as admin:
        ana = await _links_in_anas_home(root, admin)
        url = "/api/contents/home/ana"

        whole = await admin.get(url, params={"content": 1}, headers=ana)
        assert whole.status_code == 200, whole.text
        assert [entry["name"] for entry in whole.json()["content"]] == ANA_SEES
        assert _leaks(whole) == []
        for order in ("name", "directory"):
            for limit in (1, 2, 5):
                names, responses = await _pages(admin, url, ana, limit, order=order)
                assert sorted(names) == ANA_SEES, (order, limit)
                for response in responses:
                    assert _leaks(response) == [], (order, limit, response.text)
                    total = response.json()["pagination"]["total"]
                    assert total in (len(ANA_SEES), None), (order, limit, total)
                assert responses[-1].json()["pagination"]["total"] == len(ANA_SEES)

        # what the listed links show is what reading through them gives
        own = {entry["name"]: entry for entry in whole.json()["content"]}
        assert own["l_own"]["type"] == "file"
        assert own["l_own"]["size"] == len("ana's")
        assert own["l_shared"]["type"] == "directory"
        inside = await admin.get(f"{url}/l_shared", headers=ana)
        assert inside.status_code == 200, inside.text
        for name in OUT_OF_REACH:
            assert (await admin.get(f"{url}/{name}", headers=ana)).status_code == 404

        # the administrator sees every link that stays inside the root
        everything = await admin.get(url)
        assert [entry["name"] for entry in everything.json()["content"]] == ADMIN_SEES
        for order in ("name", "directory"):
            names, responses = await _pages(admin, url, {}, 2, order=order)
            assert sorted(names) == ADMIN_SEES, order
            assert responses[-1].json()["pagination"]["total"] == len(ADMIN_SEES)


async def test_a_withdrawn_share_takes_its_links_out_of_listings(
    tmp_path: Path, fast: bool
) -> None:
    root = tmp_path / "root"
    root.mkdir()
    async with _multiuser(root) as admin:
        ana = await _links_in_anas_home(root, admin)
        url = "/api/contents/home/ana"
        shares = (await admin.get("/api/users/shares")).json()
        (share,) = [s for s in shares if s["path"] == "home/bob/shared"]
        withdrawn = await admin.delete(f"/api/users/shares/{share['id']}")
        assert withdrawn.status_code == 204, withdrawn.text
        whole = await admin.get(url, headers=ana)
        assert [entry["name"] for entry in whole.json()["content"]] == ["a.txt", "l_own"]
        names, responses = await _pages(admin, url, ana, 1)
        assert names == ["a.txt", "l_own"]
        assert responses[-1].json()["pagination"]["total"] == 2


async def test_a_burst_of_listings_on_a_real_server_judges_every_link(tmp_path: Path) -> None:
    """More listings at once than the default thread limiter has tokens, each checking its
    links on the event loop: every one answers, and alike."""
    root = tmp_path / "root"
    root.mkdir()
    with serve_in_thread(
        root_dir=root,
        enable=["contents", "users"],
        database_url=f"sqlite+aiosqlite:///{tmp_path / 'junction.db'}",
        plugin_settings={"contents": {"delete_to_trash": False}},
    ) as (url, _):
        async with httpx.AsyncClient(
            base_url=url,
            headers={"Authorization": f"token {TEST_TOKEN}"},
            timeout=60,
            limits=httpx.Limits(max_connections=100),
        ) as admin:
            ana = await _links_in_anas_home(root, admin)
            seen: list[list[str]] = []

            async def list_once(index: int) -> None:
                params: dict[str, str | int] = (
                    {"limit": 2, "order": "directory"} if index % 2 else {}
                )
                response = await admin.get("/api/contents/home/ana", params=params, headers=ana)
                assert response.status_code == 200, response.text
                assert _leaks(response) == [], response.text
                if not params:
                    seen.append([entry["name"] for entry in response.json()["content"]])

            with anyio.fail_after(90):
                async with anyio.create_task_group() as group:
                    for index in range(80):
                        group.start_soon(list_once, index)
            assert seen == [ANA_SEES] * 40
