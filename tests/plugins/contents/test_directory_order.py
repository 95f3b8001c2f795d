"""Directory pages in directory order (``order=directory``): every entry once, the opaque
cursor, changes between pages, ``total``, bad queries, and users above their home."""

from __future__ import annotations

import base64
import os
import stat
from pathlib import Path
from typing import Any

import httpx
import pytest

from junction.plugins.contents.entries import ModelFactory
from junction.plugins.contents.listing import DirectoryLister, NameFilter, Page
from junction.plugins.contents.paths import RootPaths
from junction.plugins.contents.scanning import MIN_CHUNK, ScanCursor

from .test_review_fixes import HIDDEN, _admin_root, _bob_beside_ana, _multiuser, _pages

pytestmark = pytest.mark.anyio

GLOBS = ["*.pyc", "__pycache__"]


def _make(directory: Path, count: int, prefix: str = "f") -> list[str]:
    names = [f"{prefix}{index:04d}.txt" for index in range(count)]
    for name in names:
        os.mknod(directory / name, 0o644 | stat.S_IFREG)
    return names


def _scan_order(directory: Path) -> list[str]:
    """The listed names of ``directory`` in the order the filesystem returns them now."""
    names = NameFilter(allow_hidden=False, hide_globs=GLOBS).visible(os.listdir(directory))
    return [name for name in names if not (directory / name).is_symlink()]


def _lister(root: Path) -> DirectoryLister:
    return DirectoryLister(
        RootPaths(str(root), allow_hidden=False),
        ModelFactory(),
        NameFilter(allow_hidden=False, hide_globs=GLOBS),
        cache_dirs=4,
    )


def _page(lister: DirectoryLister, root: Path, limit: int, after: str | None) -> Page:
    return lister.page(str(root), "", limit, after, order="directory")


def _names(page: Page) -> list[str]:
    return [entry["name"] for entry in page.entries]


async def test_directory_order_pages_list_every_entry_once_in_scan_order(
    client: Any, root: Path
) -> None:
    _make(root, 150)
    (root / ".hidden").touch()
    (root / "x.pyc").touch()
    expected = _scan_order(root)
    assert len(expected) == 150
    names: list[str] = []
    after = None
    totals = []
    while True:
        params: dict[str, Any] = {"limit": 40, "order": "directory"}
        if after is not None:
            params["after"] = after
        response = await client.get("/api/contents", params=params)
        assert response.status_code == 200, response.text
        model = response.json()
        assert model["pagination"]["limit"] == 40
        assert model["pagination"]["after"] == after
        assert set(model["content"][0]) >= {"name", "path", "created", "size", "hash_algorithm"}
        names += [entry["name"] for entry in model["content"]]
        totals.append(model["pagination"]["total"])
        after = model["pagination"]["next"]
        if after is None:
            assert "link" not in response.headers
            break
        assert after.startswith("d1.")
        link = response.headers["link"]
        assert "order=directory" in link
        assert f"after={after}" in link
    assert names == expected
    # known once a page's scan reached the end of the directory, which the first did not
    assert totals[0] is None
    assert totals[-1] == 150
    assert set(totals) <= {None, 150}
    by_name = await client.get("/api/contents", params={"limit": 200, "order": "name"})
    assert [entry["name"] for entry in by_name.json()["content"]] == sorted(expected)
    assert by_name.json()["pagination"]["total"] == 150


@pytest.mark.parametrize("limit", [1, 7, MIN_CHUNK - 1, MIN_CHUNK, MIN_CHUNK + 1, 500])
def test_walks_fill_pages_past_dropped_entries_at_any_page_size(tmp_path: Path, limit: int) -> None:
    root = tmp_path / "root"
    root.mkdir()
    (tmp_path / "outside").touch()
    for index in range(200):
        name = f"e{index:04d}"
        if index % 5 == 0:
            os.symlink(tmp_path / "outside", root / name)  # leaves the root: not listed
        elif index % 7 == 0:
            (root / f".{name}").touch()
        else:
            os.mknod(root / name, 0o644 | stat.S_IFREG)
    expected = _scan_order(root)
    lister = _lister(root)
    seen: list[str] = []
    after = None
    for _ in range(300):
        page = _page(lister, root, limit, after)
        assert len(page.entries) == limit or page.next is None
        if page.total is not None:  # what the pages list, and nothing else
            assert page.total == len(expected)
        seen += _names(page)
        if page.next is None:
            break
        cursor = ScanCursor.decode(page.next)
        assert cursor.name == seen[-1]
        after = page.next
    assert seen == expected
    assert page.total == len(expected)


def test_a_changed_directory_pages_on_after_the_last_name_or_at_its_position(
    tmp_path: Path,
) -> None:
    root = tmp_path / "root"
    root.mkdir()
    _make(root, 60)
    lister = _lister(root)
    first = _page(lister, root, 10, None)
    last = _names(first)[-1]
    assert first.next is not None
    assert ScanCursor.decode(first.next) == ScanCursor(10, last)

    # names removed before the cursor's name (and some added): on after that name
    for name in _names(first)[:3]:
        (root / name).unlink()
    _make(root, 5, prefix="new")
    now = _scan_order(root)
    second = _page(lister, root, 10, first.next)
    assert _names(second) == now[now.index(last) + 1 :][:10]

    # the cursor's name removed: on at the same position of the directory as it is now
    assert second.next is not None
    cursor = ScanCursor.decode(second.next)
    (root / cursor.name).unlink()
    now = _scan_order(root)
    third = _page(lister, root, 10, second.next)
    assert _names(third) == now[cursor.position : cursor.position + 10]

    # the directory shrank below the cursor's position: an empty last page
    assert third.next is not None
    for name in now:
        (root / name).unlink()
    _make(root, 2, prefix="left")
    last_page = _page(lister, root, 10, third.next)
    assert (last_page.entries, last_page.next, last_page.total) == ([], None, 2)


@pytest.mark.parametrize(
    ("query", "message"),
    [
        ("limit=5&order=foo", "order must be 'name' or 'directory', got 'foo'"),
        ("limit=5&order=", "order must be 'name' or 'directory', got ''"),
        ("order=directory", "order needs limit"),
        ("order=name", "order needs limit"),
    ],
)
async def test_bad_orders_are_refused(client: Any, query: str, message: str) -> None:
    response = await client.get(f"/api/contents?{query}")
    assert response.status_code == 400
    assert response.json() == {"message": message, "reason": "Bad Request"}


def _b64(name: bytes) -> str:
    return base64.urlsafe_b64encode(name).rstrip(b"=").decode()


@pytest.mark.parametrize(
    "cursor",
    [
        "f0001.txt",  # a name: a cursor of name order
        "d1.",
        "d1.5",
        "d1.5.",
        "d1.0." + _b64(b"f0001.txt"),  # no page ends before the first name
        "d1.-1." + _b64(b"f0001.txt"),
        "d1.\u0665." + _b64(b"f0001.txt"),  # a non-ASCII digit
        "d1.1234567890123456789." + _b64(b"f0001.txt"),
        "d1.5.ZjAwMDEudHh0!",
        "d1.5." + _b64(b"bad-\xff-name"),
        "d1.5." + _b64(b"a/b"),
        "d1.5." + _b64(b"a\0b"),
        "d1.5.A",  # not a whole byte
        "d1.5." + "QUFB" * 400,
        "d2.5." + _b64(b"f0001.txt"),
    ],
)
async def test_malformed_directory_order_cursors_are_refused(
    client: Any, root: Path, cursor: str
) -> None:
    _make(root, 10)
    response = await client.get(
        "/api/contents", params={"limit": 5, "order": "directory", "after": cursor}
    )
    assert response.status_code == 400, response.text
    body = response.json()
    assert body["reason"] == "Bad Request"
    assert body["message"].startswith(
        "after must be the pagination.next of an earlier page in directory order"
    )
    assert len(body["message"]) < 200


async def test_order_name_is_the_default_and_directory_order_is_for_directories(
    client: Any, root: Path
) -> None:
    _make(root, 12)
    default = await client.get("/api/contents", params={"limit": 5})
    by_name = await client.get("/api/contents", params={"limit": 5, "order": "name"})
    assert default.json() == by_name.json()
    assert default.json()["pagination"]["next"] == "f0004.txt"
    response = await client.get("/api/contents/f0001.txt?limit=5&order=directory")
    assert response.json() == {"message": "f0001.txt is not a directory", "reason": "bad type"}
    response = await client.get("/api/contents?limit=5&order=directory&type=file")
    assert response.json()["reason"] == "bad type"
    small = await client.get("/api/contents", params={"limit": 20, "order": "directory"})
    assert small.json()["pagination"] == {"limit": 20, "after": None, "next": None, "total": 12}


# -- users in a folder above their home ------------------------------------------------


def _told(response: httpx.Response) -> str:
    """Everything a response says, with the names inside its cursors decoded."""
    pagination = response.json()["pagination"]
    cursors = [pagination["after"], pagination["next"]]
    names = [ScanCursor.decode(c).name for c in cursors if c is not None]
    return response.text + str(dict(response.headers)) + " ".join(names)


async def test_directory_order_above_a_home_shows_only_what_the_listing_shows(
    tmp_path: Path, fast: bool
) -> None:
    async with _multiuser(_admin_root(tmp_path)) as admin:
        bob = await _bob_beside_ana(admin)

        for url, visible in [("/api/contents", {"home", "team"}), ("/api/contents/home", {"bob"})]:
            for limit in (1, 2, 5):
                names, responses = await _pages(admin, url, bob, limit, order="directory")
                assert sorted(names) == sorted(visible), (url, limit)
                passed = 0
                for response in responses:
                    pagination = response.json()["pagination"]
                    assert pagination["total"] in (None, len(visible))
                    passed += len(response.json()["content"])
                    if pagination["next"] is not None:  # positions count bob's names alone
                        assert ScanCursor.decode(pagination["next"]).position == passed
                    told = _told(response)
                    assert [name for name in HIDDEN if name in told] == [], (url, limit)
                assert responses[-1].json()["pagination"]["total"] == len(visible)

            # a cursor naming a hidden entry reads as one naming an entry that does not exist
            forged = {}
            for name in ("ana", "zz-salaries.csv", "no-such-entry"):
                cursor = ScanCursor(1, name).encode()
                response = await admin.get(
                    url, params={"limit": 5, "order": "directory", "after": cursor}, headers=bob
                )
                assert response.status_code == 200, response.text
                forged[name] = response.json()["content"], response.json()["pagination"]["next"]
            assert forged["ana"] == forged["no-such-entry"] == forged["zz-salaries.csv"]

        # the administrator still pages over everything
        names, _ = await _pages(admin, "/api/contents", {}, 1, order="directory")
        assert sorted(names) == ["aa-board-minutes.txt", "home", "team", "zz-salaries.csv"]
