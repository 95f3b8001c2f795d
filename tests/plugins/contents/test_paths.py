"""Paths never leave the root: the traversal set against every endpoint, hidden files, links.

In-process requests keep percent-encoded dots as they are (httpx only normalises literal
``..`` segments); literal ``..`` over a real socket is covered in tests/e2e.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any
from urllib.parse import unquote

import pytest

from junction.plugins.contents.paths import Access, RootPaths, find_fd_path, split_api_path
from junction.plugins.contents.service import (
    FileNotFound,
    HiddenPathRefused,
    InvalidPath,
    OutsideRoot,
)

from .conftest import contents_client

pytestmark = pytest.mark.anyio

SECRET = "TOP SECRET outside the root"

TRAVERSALS = [
    "..%2Foutside%2Fsecret.txt",
    "%2e%2e/outside/secret.txt",
    "%2E%2E%2Foutside%2Fsecret.txt",
    ".%2e/outside/secret.txt",
    "sub/%2e%2e/%2e%2e/outside/secret.txt",
    "%252e%252e/outside/secret.txt",
    "%252e%252e%252foutside%252fsecret.txt",
    "..%5coutside%5csecret.txt",
    "sub%5c..%5c..%5coutside",
    "ok.txt%00.png",
    "%00",
    "escape/secret.txt",
    "escape.txt",
    "escape",
    "....//....//outside/secret.txt",
    "%2F%2Foutside%2Fsecret.txt",
]
"""Wire forms (percent-encoded as sent); the server sees them decoded once."""


@pytest.fixture
def layout(tmp_path: Path, root: Path) -> Path:
    """``root`` with a file, a folder, links leading out, and a secret outside it."""
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "secret.txt").write_text(SECRET)
    (root / "ok.txt").write_text("ok")
    (root / "sub").mkdir()
    os.symlink(outside, root / "escape")
    os.symlink(outside / "secret.txt", root / "escape.txt")
    return outside


def _requests(wire: str) -> list[tuple[str, str, Any]]:
    plain = unquote(wire)
    text = {"type": "file", "format": "text", "content": "pwned"}
    return [
        ("GET", f"/api/contents/{wire}", None),
        ("GET", f"/api/contents/{wire}?limit=5", None),
        ("GET", f"/api/contents/{wire}?offset=0&length=5", None),
        ("GET", f"/files/{wire}", None),
        ("HEAD", f"/files/{wire}", None),
        ("PUT", f"/api/contents/{wire}", text),
        ("PUT", f"/api/contents/{wire}", {"type": "directory"}),
        ("POST", f"/api/contents/{wire}", {"type": "file"}),
        ("POST", "/api/contents/sub", {"copy_from": plain}),
        ("PATCH", f"/api/contents/{wire}", {"path": "moved.txt"}),
        ("PATCH", "/api/contents/ok.txt", {"path": plain}),
        ("DELETE", f"/api/contents/{wire}", None),
        ("GET", f"/api/contents/{wire}/checkpoints", None),
        ("POST", f"/api/contents/{wire}/checkpoints", None),
        ("POST", f"/api/contents/{wire}/checkpoints/checkpoint", None),
        ("DELETE", f"/api/contents/{wire}/checkpoints/checkpoint", None),
        ("POST", f"/api/contents/{wire}/trust", None),
    ]


def _snapshot(directory: Path) -> dict[str, bytes]:
    found = {}
    for path in sorted(directory.rglob("*")):
        if path.is_file() and not path.is_symlink():
            found[str(path.relative_to(directory))] = path.read_bytes()
        else:
            found[str(path.relative_to(directory))] = b"<dir or link>"
    return found


@pytest.mark.parametrize("wire", TRAVERSALS)
async def test_traversal_set_never_reaches_outside_the_root(
    root: Path, layout: Path, tmp_path: Path, wire: str
) -> None:
    before_outside, before_root = _snapshot(layout), _snapshot(root)
    async with contents_client(root) as client:
        for method, url, body in _requests(wire):
            response = await client.request(method, url, json=body)
            where = f"{method} {url} {body}"
            assert response.status_code in (400, 403, 404), where
            if method != "HEAD":
                error = response.json()
                assert set(error) == {"message", "reason"}, where
                assert SECRET not in response.text, where
                assert str(tmp_path) not in response.text, where
    assert _snapshot(layout) == before_outside
    assert _snapshot(root) == before_root


async def test_traversal_errors_say_why(client: Any, root: Path, layout: Path) -> None:
    cases = {
        "..%2Foutside": (400, "invalid path '../outside': '.' and '..' segments are not allowed"),
        "a%5cb": (400, "invalid path 'a\\\\b': backslashes are not allowed"),
        "a%00b": (400, "invalid path: NUL bytes are not allowed"),
        "escape.txt": (403, "'escape.txt' leads outside the root directory through a link"),
        "escape/secret.txt": (
            403,
            "'escape/secret.txt' leads outside the root directory through a link",
        ),
        "%252e%252e": (
            400,
            "invalid path '%2e%2e': names must not encode '.', '..', '/', '\\' or NUL",
        ),
        "100%2525": (404, "file or directory '100%25' does not exist"),
    }
    for wire, (status, message) in cases.items():
        response = await client.get(f"/api/contents/{wire}")
        assert (response.status_code, response.json()["message"]) == (status, message), wire
    assert (await client.get("/api/contents/a%5cb")).json()["reason"] == "bad path"
    assert (await client.get("/api/contents/escape.txt")).json()["reason"] == "Forbidden"


async def test_absolute_paths_are_read_relative_to_the_root(client: Any, root: Path) -> None:
    (root / "etc").mkdir()
    (root / "etc" / "passwd").write_text("inside")
    response = await client.get("/api/contents//etc/passwd")
    assert response.status_code == 200
    assert response.json()["path"] == "etc/passwd"
    assert response.json()["content"] == "inside"


async def test_links_inside_the_root_work_and_leaving_ones_are_not_listed(
    client: Any, root: Path, layout: Path
) -> None:
    (root / "sub" / "real.txt").write_text("real")
    os.symlink("sub/real.txt", root / "alias.txt")
    os.symlink("sub", root / "alias-dir")
    os.symlink("missing", root / "dangling")
    listing = (await client.get("/api/contents")).json()["content"]
    assert {entry["name"]: entry["type"] for entry in listing} == {
        "alias-dir": "directory",
        "alias.txt": "file",
        "ok.txt": "file",
        "sub": "directory",
    }
    assert (await client.get("/api/contents/alias.txt")).json()["content"] == "real"
    body = {"type": "file", "format": "text", "content": "through the link"}
    assert (await client.put("/api/contents/alias.txt", json=body)).status_code == 200
    assert os.path.islink(root / "alias.txt")
    assert (root / "sub" / "real.txt").read_text() == "through the link"
    moved = await client.patch("/api/contents/alias.txt", json={"path": "renamed.txt"})
    assert moved.status_code == 200
    assert os.readlink(root / "renamed.txt") == "sub/real.txt"


async def test_hidden_items_are_404_to_reads_400_to_writes_and_absent_from_listings(
    client: Any, root: Path
) -> None:
    (root / ".git").mkdir()
    (root / ".git" / "config").write_text("[core]")
    (root / ".env").write_text("KEY=1")
    os.symlink(".env", root / "visible-link")
    for url in ("/api/contents/.env", "/api/contents/.git/config", "/files/.env"):
        response = await client.get(url)
        assert response.status_code == 404, url
    response = await client.get("/api/contents/visible-link")
    assert response.status_code == 404
    assert response.json()["message"] == "file or directory 'visible-link' does not exist"
    body = {"type": "file", "format": "text", "content": "x"}
    response = await client.put("/api/contents/.git/config", json=body)
    assert response.status_code == 400
    assert response.json()["message"] == "cannot save hidden file or directory '.git/config'"
    assert (root / ".git" / "config").read_text() == "[core]"
    names = [entry["name"] for entry in (await client.get("/api/contents")).json()["content"]]
    assert names == []


async def test_allow_hidden_serves_and_lists_dot_files(root: Path) -> None:
    (root / ".env").write_text("KEY=1")
    async with contents_client(root, allow_hidden=True) as client:
        assert (await client.get("/api/contents/.env")).json()["content"] == "KEY=1"
        names = [entry["name"] for entry in (await client.get("/api/contents")).json()["content"]]
        assert names == [".env"]
        response = await client.get("/api/contents/%2e%2e")
        assert response.status_code == 400


def test_split_api_path_drops_empty_segments_and_refuses_the_rest() -> None:
    assert split_api_path("") == []
    assert split_api_path("/a//b/") == ["a", "b"]
    assert split_api_path("100%25/%41") == ["100%25", "%41"]
    for bad in ("..", "a/../b", "./a", "a\\b", "a\x00", "%2e%2e", "a%2Fb", "%5c", "%00"):
        with pytest.raises(InvalidPath):
            split_api_path(bad)


def test_root_paths_resolution(tmp_path: Path) -> None:
    root = tmp_path / "root"
    (root / "d").mkdir(parents=True)
    (tmp_path / "out").mkdir()
    os.symlink(tmp_path / "out", root / "out-link")
    os.symlink("d", root / "in-link")
    paths = RootPaths(str(root), allow_hidden=False)
    assert paths.resolve("", Access.READ).os_path == str(root)
    assert paths.resolve("in-link/new.txt", Access.WRITE).os_path == str(root / "d" / "new.txt")
    assert paths.resolve_entry("in-link", Access.WRITE).os_path == str(root / "in-link")
    with pytest.raises(OutsideRoot):
        paths.resolve("out-link/x", Access.WRITE)
    with pytest.raises(OutsideRoot):
        paths.resolve_entry("out-link", Access.WRITE)
    with pytest.raises(FileNotFound):
        paths.resolve(".hidden", Access.READ)
    with pytest.raises(HiddenPathRefused):
        paths.resolve("d/.hidden", Access.WRITE)
    assert paths.relative(str(root / "d")) == "d"


async def test_a_link_cannot_be_moved_where_it_would_lead_outside(client: Any, root: Path) -> None:
    (root / "race" / "p" / "q").mkdir(parents=True)
    os.symlink("../../..", root / "race" / "p" / "q" / "L")  # here: the root itself
    response = await client.patch("/api/contents/race/p/q/L", json={"path": "race/d"})
    assert response.status_code == 403
    assert response.json()["message"] == (
        "cannot move the link 'race/p/q/L' to 'race/d': from there it would lead outside "
        "the root directory"
    )
    assert os.path.islink(root / "race" / "p" / "q" / "L")
    assert not os.path.lexists(root / "race" / "d")
    response = await client.patch("/api/contents/race/p/q/L", json={"path": "race/p/L"})
    assert response.status_code == 403  # one level up is outside too


async def test_a_link_cannot_be_moved_where_it_would_lead_to_a_hidden_place(
    client: Any, root: Path
) -> None:
    (root / ".secret").mkdir()
    os.symlink(".secret", root / "m")
    (root / "p" / "q").mkdir(parents=True)
    (root / "n").mkdir()
    os.symlink("../m", root / "p" / "q" / "L")  # here: 'p/m', which does not exist
    response = await client.patch("/api/contents/p/q/L", json={"path": "n/L"})
    assert response.status_code == 400
    assert "hidden" in response.json()["message"]
    assert os.path.islink(root / "p" / "q" / "L")


async def test_a_link_moved_where_it_still_leads_inside_moves(client: Any, root: Path) -> None:
    (root / "d").mkdir()
    (root / "d" / "x.txt").write_text("x")
    (root / "a" / "b").mkdir(parents=True)
    os.symlink("../d", root / "a" / "L")  # 'd' from 'a/L', and from 'b/L' as well
    (root / "b").mkdir()
    response = await client.patch("/api/contents/a/L", json={"path": "b/L"})
    assert response.status_code == 200, response.text
    assert response.json()["type"] == "directory"
    assert os.readlink(root / "b" / "L") == "../d"
    assert (await client.get("/api/contents/b/L/x.txt")).json()["content"] == "x"


def test_open_descriptors_are_checked_where_they_really_are(tmp_path: Path) -> None:
    root = tmp_path / "root"
    (root / "d").mkdir(parents=True)
    (root / ".h").mkdir()
    (tmp_path / "out").mkdir()
    os.symlink(tmp_path / "out", root / "out-link")
    paths = RootPaths(str(root), allow_hidden=False)
    fd = paths.open_dir(str(root / "d"), "d")
    os.close(fd)
    with pytest.raises(OutsideRoot, match="'x' leads outside the root directory"):
        paths.open_dir(str(root / "out-link"), "x")
    with pytest.raises(HiddenPathRefused):
        paths.open_dir(str(root / ".h"), "y")
    with pytest.raises(FileNotFound):
        paths.open_dir(str(root / ".h"), "y", Access.READ)
    fd = RootPaths(str(root), allow_hidden=True).open_dir(str(root / ".h"), "y")
    os.close(fd)
    before = len(os.listdir("/proc/self/fd"))
    for _ in range(3):
        with pytest.raises(OutsideRoot):
            paths.open_dir(str(root / "out-link"), "x")
    assert len(os.listdir("/proc/self/fd")) == before  # refused descriptors are closed


def test_open_descriptors_are_named_by_the_kernel(tmp_path: Path) -> None:
    fd_path = find_fd_path()
    assert fd_path is not None  # Linux: /proc/self/fd
    fd = os.open(tmp_path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        assert fd_path(fd) == os.path.realpath(tmp_path)
        os.rename(tmp_path, tmp_path.with_name(tmp_path.name + "-moved"))
        assert fd_path(fd) == os.path.realpath(tmp_path) + "-moved"  # the object, not the path
    finally:
        os.close(fd)
        os.rename(tmp_path.with_name(tmp_path.name + "-moved"), tmp_path)
