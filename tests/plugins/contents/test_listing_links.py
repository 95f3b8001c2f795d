"""Links in listings: judged by the kernel once per request, never cached as judged.

A link's text is chosen by whoever made it; resolving it with ``os.path.realpath`` costs one
``lstat`` per path part (a link ``x/x/x/.../f`` through ``x -> .`` thousands of parts long
costs milliseconds, and the kernel then refuses it). Listings let the kernel follow links
instead (``RootPaths.link_target``), so a page of a directory full of such links costs
about what one of plain files does. The name cache keeps links unjudged: a link that was
broken when the list was cached is listed once its target appears.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from junction.plugins.contents.entries import ModelFactory
from junction.plugins.contents.listing import DirectoryLister, NameFilter
from junction.plugins.contents.paths import RootPaths
from junction.testing import TEST_TOKEN, serve_in_thread

from .conftest import contents_client

pytestmark = pytest.mark.anyio

LOOP_TEXT = "x/" * 2040 + "f"
"""A link text the kernel refuses at once (more than 40 links through ``x -> .``) and
``realpath`` walks part by part."""


def _looping(directory: Path, count: int, files: int) -> list[str]:
    """``count`` looping links beside ``files`` files in ``directory``; the files' names."""
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "x").symlink_to(".")
    for index in range(count):
        os.symlink(LOOP_TEXT, directory / f"loop{index:05}")
    names = [f"file{index:02}.txt" for index in range(files)]
    for name in names:
        (directory / name).write_text(name)
    return names


def _lister(root: Path) -> DirectoryLister:
    return DirectoryLister(
        RootPaths(str(root), allow_hidden=False),
        ModelFactory(),
        NameFilter(allow_hidden=False, hide_globs=[]),
        cache_dirs=8,
    )


@pytest.fixture
def counted(monkeypatch: pytest.MonkeyPatch) -> dict[str, int]:
    """Counts of ``os.path.realpath`` calls and of ``RootPaths.link_target`` calls per link."""
    counts: dict[str, int] = {"realpath": 0}
    realpath: Callable[..., str] = os.path.realpath
    link_target: Any = getattr(RootPaths, "link_target", None)

    def counting_realpath(path: Any, *args: Any, **kwargs: Any) -> str:
        counts["realpath"] += 1
        return realpath(path, *args, **kwargs)

    def counting_link_target(self: RootPaths, dir_fd: int, name: str, os_dir: str) -> Any:
        counts[name] = counts.get(name, 0) + 1
        return link_target(self, dir_fd, name, os_dir)

    monkeypatch.setattr(os.path, "realpath", counting_realpath)
    monkeypatch.setattr(RootPaths, "link_target", counting_link_target, raising=False)
    return counts


def _reset(counts: dict[str, int]) -> None:
    counts.clear()
    counts["realpath"] = 0


def test_links_are_followed_by_the_kernel_once_per_request(
    tmp_path: Path, counted: dict[str, int]
) -> None:
    root = tmp_path / "root"
    files = _looping(root / "d", 50, 3)
    (root / "d" / "good").symlink_to("x/x/x/file00.txt")
    lister = _lister(root)
    os_dir, listed = str(root / "d"), [*files, "good", "x"]
    _reset(counted)
    requests: list[Callable[[], list[str]]] = [
        lambda: [entry["name"] for entry in lister.listing(os_dir, "d")],
        lambda: [entry["name"] for entry in lister.page(os_dir, "d", 100, None).entries],
        lambda: [
            entry["name"]
            for entry in lister.page(os_dir, "d", 100, None, order="directory").entries
        ],
    ]
    for request in requests:
        assert sorted(request()) == listed
        assert counted.pop("realpath") == 0  # no link walked part by part
        assert set(counted) == {f"loop{index:05}" for index in range(50)} | {"good", "x"}
        assert set(counted.values()) == {1}  # each link judged once, listed or not
        _reset(counted)
    page = lister.page(os_dir, "d", 1, None)
    assert [entry["name"] for entry in page.entries] == ["file00.txt"]
    assert page.total == len(listed)


def test_the_kernel_and_realpath_agree_on_where_links_lead(tmp_path: Path) -> None:
    root = tmp_path / "root"
    (root / "d" / "sub").mkdir(parents=True)
    (root / "d" / "f.txt").write_text("f")
    (root / ".hid").mkdir()
    (tmp_path / "out.txt").write_text("out")
    links = {
        "deep": "sub/../" * 200 + "f.txt",
        "up-and-in": "../d/sub",
        "absolute": str(root / "d" / "f.txt"),
        "out": "../../out.txt",
        "hidden": "../.hid",
        "broken": "missing",
        "self": "self",
        "chain": "deep",
    }
    for name, text in links.items():
        (root / "d" / name).symlink_to(text)
    paths = RootPaths(str(root), allow_hidden=False)
    fd = os.open(root / "d", os.O_RDONLY | os.O_DIRECTORY)
    try:
        for name in links:
            verdict = paths.link_target(fd, name, str(root / "d"))
            real = os.path.realpath(root / "d" / name)
            allowed = paths.contains(real) and not paths._hidden_inside(real)
            allowed = allowed and os.path.exists(root / "d" / name)
            assert (verdict is not None) == allowed, name
            if verdict is not None:
                assert verdict[1] == real
                assert verdict[0].st_ino == os.stat(real).st_ino
    finally:
        os.close(fd)


@pytest.fixture(scope="module")
def looping_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    root = tmp_path_factory.mktemp("links") / "root"
    _looping(root / "loops", 3000, 10)
    (root / "small").mkdir()
    (root / "small" / "one.txt").write_text("one")
    with serve_in_thread(root_dir=root, enable=["contents"]) as (url, _):
        yield url


BOUND = 10.0
"""Seconds a page may take here; resolving 3000 looping links with ``realpath`` takes some
30 s on each page, letting the kernel follow them some tens of milliseconds."""


@pytest.mark.parametrize(
    ("params", "count"),
    [
        ({"content": "1", "limit": "1"}, 1),
        ({"content": "1", "limit": "5", "order": "directory"}, 5),
    ],
)
async def test_a_page_of_many_looping_links_answers_quickly(
    looping_server: str, params: dict[str, str], count: int
) -> None:
    headers = {"Authorization": f"token {TEST_TOKEN}"}
    async with httpx.AsyncClient(base_url=looping_server, headers=headers, timeout=120) as client:
        started = time.monotonic()
        response = await client.get("api/contents/loops", params=params)
        elapsed = time.monotonic() - started
        assert response.status_code == 200
        content = response.json()["content"]
        assert len(content) == count
        assert {entry["name"] for entry in content} <= {f"file{i:02}.txt" for i in range(10)} | {
            "x"
        }
        assert elapsed < BOUND, elapsed


async def test_a_cached_listing_shows_a_link_once_its_target_appears(tmp_path: Path) -> None:
    root = tmp_path / "root"
    big = root / "big"
    big.mkdir(parents=True)
    (root / "t2").mkdir()
    for index in range(1200):
        (big / f"f{index:04}.txt").write_text("")
    (big / "zlink").symlink_to("../t2/x")
    past = time.time() - 10  # older than the cache's two seconds
    os.utime(big, (past, past))
    async with contents_client(root) as client:
        for _ in range(2):  # cached, then sorted in the cache
            response = await client.get("/api/contents/big", params={"content": "1"})
            assert len(response.json()["content"]) == 1200
        (root / "t2" / "x").write_text("now here")
        response = await client.get("/api/contents/big", params={"content": "1"})
        names = [entry["name"] for entry in response.json()["content"]]
        assert names[-1] == "zlink"
        assert len(names) == 1201
        page = await client.get(
            "/api/contents/big", params={"content": "1", "limit": "10", "after": "f1199.txt"}
        )
        assert [entry["name"] for entry in page.json()["content"]] == ["zlink"]
        assert page.json()["pagination"]["total"] == 1201
        (root / "t2" / "x").unlink()  # broken again: left out, and not counted
        page = await client.get("/api/contents/big", params={"content": "1", "limit": "1"})
        assert page.json()["pagination"]["total"] == 1200
