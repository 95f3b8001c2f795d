"""Directory listings: filtering, pagination with a cursor, the name cache."""

from __future__ import annotations

import os
import stat
import time
from pathlib import Path
from typing import Any

import pytest

from junction.plugins.contents.entries import ModelFactory
from junction.plugins.contents.listing import CACHE_MIN_NAMES, DirectoryLister, NameFilter
from junction.plugins.contents.paths import RootPaths

from .conftest import contents_client

pytestmark = pytest.mark.anyio


def _make(directory: Path, count: int, prefix: str = "f") -> list[str]:
    names = [f"{prefix}{index:05d}.txt" for index in range(count)]
    for name in names:  # mknod: an empty file in one system call (touch takes three)
        os.mknod(directory / name, 0o644 | stat.S_IFREG)
    return names


def _age(directory: Path) -> None:
    """Make a directory look last modified a minute ago, so its names may be cached."""
    old = time.time() - 60
    os.utime(directory, (old, old))


async def _walk(client: Any, url: str, limit: int) -> list[list[str]]:
    pages = []
    after = None
    while True:
        params: dict[str, Any] = {"limit": limit}
        if after is not None:
            params["after"] = after
        response = await client.get(url, params=params)
        assert response.status_code == 200, response.text
        model = response.json()
        pages.append([entry["name"] for entry in model["content"]])
        after = model["pagination"]["next"]
        if after is None:
            assert "link" not in response.headers
            return pages
        assert response.headers["link"].endswith('>; rel="next"')
        assert f"after={after}" in response.headers["link"]


async def test_pages_walk_the_directory_in_name_order(client: Any, root: Path) -> None:
    names = _make(root, 25)
    (root / ".hidden").touch()
    (root / "x.pyc").touch()
    response = await client.get("/api/contents", params={"limit": 10})
    model = response.json()
    assert [entry["name"] for entry in model["content"]] == names[:10]
    assert model["pagination"] == {"limit": 10, "after": None, "next": names[9], "total": 25}
    assert set(model["content"][0]) >= {"name", "path", "created", "hash_algorithm"}
    pages = await _walk(client, "/api/contents", 10)
    assert [len(page) for page in pages] == [10, 10, 5]
    assert [name for page in pages for name in page] == names


async def test_after_may_name_an_entry_that_does_not_exist(client: Any, root: Path) -> None:
    _make(root, 5)
    response = await client.get("/api/contents", params={"limit": 2, "after": "f00001.zzz"})
    assert [entry["name"] for entry in response.json()["content"]] == [
        "f00002.txt",
        "f00003.txt",
    ]
    response = await client.get("/api/contents", params={"limit": 2, "after": "zzz"})
    assert response.json()["content"] == []
    assert response.json()["pagination"]["next"] is None


@pytest.mark.parametrize(
    ("query", "status", "message"),
    [
        ("limit=0", 400, "limit must be an integer from 1 to 10000, got '0'"),
        ("limit=10001", 400, "limit must be an integer from 1 to 10000, got '10001'"),
        ("limit=ten", 400, "limit must be an integer from 1 to 10000, got 'ten'"),
        ("limit=%C2%B2", 400, "limit must be an integer from 1 to 10000, got '\u00b2'"),
        ("after=a", 400, "after needs limit"),
    ],
)
async def test_pagination_refuses_bad_queries(
    client: Any, query: str, status: int, message: str
) -> None:
    response = await client.get(f"/api/contents?{query}")
    assert response.status_code == status
    assert response.json() == {"message": message, "reason": "Bad Request"}


async def test_pagination_is_for_directories(client: Any, root: Path) -> None:
    (root / "a.txt").touch()
    response = await client.get("/api/contents/a.txt?limit=5")
    assert response.status_code == 400
    assert response.json() == {"message": "a.txt is not a directory", "reason": "bad type"}
    response = await client.get("/api/contents?limit=5&type=file")
    assert response.status_code == 400
    assert response.json()["reason"] == "bad type"


async def test_large_directory_pages_stay_right_through_the_cache_and_changes(
    root: Path,
) -> None:
    big = root / "big"
    big.mkdir()
    names = _make(big, CACHE_MIN_NAMES + 200)
    _age(big)
    async with contents_client(root, max_page_size=500) as client:
        first = await _walk(client, "/api/contents/big", 500)  # cold, then cached, then sorted
        assert [name for page in first for name in page] == names
        again = await _walk(client, "/api/contents/big", 500)  # every page from the cache
        assert again == first
        (big / "f00000.5.txt").touch()  # the directory changed: the cache must notice
        (big / "f00002.txt").unlink()
        expected = sorted({*names, "f00000.5.txt"} - {"f00002.txt"})
        pages = await _walk(client, "/api/contents/big", 500)
        assert [name for page in pages for name in page] == expected
        whole = (await client.get("/api/contents/big")).json()["content"]
        assert [entry["name"] for entry in whole] == expected


def test_cold_and_cached_pages_skip_links_leaving_the_root_and_still_fill_up(
    tmp_path: Path,
) -> None:
    root = tmp_path / "root"
    root.mkdir()
    (tmp_path / "outside").touch()
    expected = []
    for index in range(120):
        name = f"e{index:04d}"
        if index % 3 == 0:
            os.symlink(tmp_path / "outside", root / name)
        else:
            os.mknod(root / name, 0o644 | stat.S_IFREG)
            expected.append(name)
    _age(root)
    paths = RootPaths(str(root), allow_hidden=False)
    lister = DirectoryLister(
        paths,
        ModelFactory(),
        NameFilter(allow_hidden=False, hide_globs=[]),
        cache_dirs=4,
        cache_min_names=100,
    )
    for _ in range(3):  # cold (heap), cached unsorted -> sorted, cached sorted
        seen: list[str] = []
        after = None
        while True:
            page = lister.page(str(root), "", 7, after)
            assert len(page.entries) == 7 or page.next is None
            assert page.total == len(expected)  # links leaving the root are not counted
            seen.extend(entry["name"] for entry in page.entries)
            if page.next is None:
                break
            after = page.next
        assert seen == expected


def test_cache_is_bounded_and_skips_recent_or_small_directories(tmp_path: Path) -> None:
    paths = RootPaths(str(tmp_path), allow_hidden=False)
    lister = DirectoryLister(
        paths,
        ModelFactory(),
        NameFilter(allow_hidden=False, hide_globs=[]),
        cache_dirs=1,
        cache_min_names=20,
    )
    small, fresh, old_a, old_b = (tmp_path / name for name in ("small", "fresh", "a", "b"))
    for directory, count in ((small, 10), (fresh, 20), (old_a, 20), (old_b, 20)):
        directory.mkdir()
        _make(directory, count)
    for directory in (small, old_a, old_b):
        _age(directory)
    for directory in (small, fresh, old_a, old_b):
        lister.page(str(directory), "", 5, None)
    assert list(lister._cache) == [str(old_b)]


def test_name_filter_shapes() -> None:
    names = NameFilter(
        allow_hidden=False, hide_globs=["__pycache__", "*.pyc", "*~", "a?c", "[xy]*.log"]
    )
    shown = names.visible(
        [".git", "a.pyc", "abc", "abcd", "ok", "x~", "__pycache__", "x1.log", "z.log", "café"]
    )
    assert shown == ["abcd", "ok", "z.log", "café"]
    assert names.shown("ok")
    assert not names.shown("a.pyc")
    assert NameFilter(allow_hidden=True, hide_globs=[]).visible([".git", "a"]) == [".git", "a"]


async def test_listing_skips_undecodable_names_and_special_files(client: Any, root: Path) -> None:
    (root / "fine.txt").touch()
    with open(os.path.join(os.fsencode(root), b"bad-\xff-name"), "wb"):
        pass
    os.mkfifo(root / "pipe")
    response = await client.get("/api/contents")
    assert response.status_code == 200
    assert [entry["name"] for entry in response.json()["content"]] == ["fine.txt"]
    paged = await client.get("/api/contents?limit=10")
    assert [entry["name"] for entry in paged.json()["content"]] == ["fine.txt"]
