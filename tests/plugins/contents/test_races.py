"""Races between a request's path check and its use: the disk changes under a waiting request.

A request resolves its path, then may wait for the path's lock while other requests rename
things. Each test holds the lock itself, starts the request, waits until the request is
queued on the lock, swaps a directory of the checked path for a link leading outside the
root (through the API where the API allows it), releases the lock and checks that nothing
outside the root was read, written, moved or deleted.

The root is ``tmp_path/x/root``, so a link ``../../..`` in ``root/race`` leads to
``tmp_path``: the outside world here is ``tmp_path`` itself.
"""

from __future__ import annotations

import base64
import os
from pathlib import Path
from typing import Any

import anyio
import pytest

from .conftest import contents_client, service

pytestmark = pytest.mark.anyio

OUTSIDE = "OUTSIDE the root"
TEXT = {"type": "file", "format": "text", "content": "ESCAPED"}


@pytest.fixture
def deep_root(tmp_path: Path) -> Path:
    """``tmp_path/x/root`` with ``race/d/f.txt`` and a file ``tmp_path/f.txt`` outside it."""
    root = tmp_path / "x" / "root"
    (root / "race" / "d").mkdir(parents=True)
    (root / "race" / "d" / "f.txt").write_text("inside")
    (tmp_path / "f.txt").write_text(OUTSIDE)
    return root


async def _held(client: Any, key: str, request: Any, swap: Any) -> Any:
    """Run ``request`` while holding the lock of ``key``; ``swap`` runs once it waits."""
    contents = service(client)
    result: dict[str, Any] = {}

    async def send() -> None:
        result["response"] = await request()

    async with anyio.create_task_group() as group, contents.locks.hold(key):
        group.start_soon(send)
        with anyio.fail_after(20):
            while contents.locks.holders(key) < 2:  # the request waits on the lock
                await anyio.sleep(0.005)
        await swap()
    return result["response"]


async def _swap_through_directory_moves(client: Any, root: Path) -> None:
    """Make ``race/d`` a link to ``tmp_path`` using only renames the API allows.

    ``zz/a/b/race2/d -> ../../..`` leads to ``zz`` (inside); moving ``race2`` to ``race``
    changes where it leads without moving the link itself.
    """
    (root / "zz" / "a" / "b" / "race2").mkdir(parents=True)
    os.symlink("../../..", root / "zz" / "a" / "b" / "race2" / "d")
    moves = [("race", "race_old"), ("zz/a/b/race2", "race")]
    for source, target in moves:
        response = await client.patch(f"/api/contents/{source}", json={"path": target})
        assert response.status_code == 200, response.text
    assert os.path.realpath(root / "race" / "d") == str(root.parent.parent)


async def test_a_save_racing_the_reported_link_move_never_writes_outside(
    deep_root: Path, tmp_path: Path
) -> None:
    """The review's sequence: move ``race/d`` away, move a link to ``race/d``."""
    root = deep_root
    (tmp_path / "f.txt").unlink()
    (root / "race" / "p" / "q").mkdir(parents=True)
    os.symlink("../../..", root / "race" / "p" / "q" / "L")  # leads to the root itself
    async with contents_client(root) as client:

        async def put() -> Any:
            return await client.put("/api/contents/race/d/f.txt", json=TEXT)

        async def swap() -> None:
            first = await client.patch("/api/contents/race/d", json={"path": "race/d_old"})
            assert first.status_code == 200
            second = await client.patch("/api/contents/race/p/q/L", json={"path": "race/d"})
            assert second.status_code == 403, second.text
            assert "outside the root" in second.json()["message"]

        response = await _held(client, str(root / "race" / "d" / "f.txt"), put, swap)
    assert response.status_code == 404, response.text
    assert not (tmp_path / "f.txt").exists()
    assert os.path.islink(root / "race" / "p" / "q" / "L")
    assert (root / "race" / "d_old" / "f.txt").read_text() == "inside"


async def test_a_save_racing_a_directory_swap_never_writes_outside(
    deep_root: Path, tmp_path: Path
) -> None:
    root = deep_root
    async with contents_client(root) as client:

        async def put() -> Any:
            return await client.put("/api/contents/race/d/f.txt", json=TEXT)

        response = await _held(
            client,
            str(root / "race" / "d" / "f.txt"),
            put,
            lambda: _swap_through_directory_moves(client, root),
        )
        assert response.status_code == 403, response.text
        assert response.json()["message"] == (
            "'race/d/f.txt' leads outside the root directory through a link"
        )
        assert (tmp_path / "f.txt").read_text() == OUTSIDE
        response = await client.get("/api/contents/race/d/f.txt")  # a fresh request: 403 too
        assert response.status_code == 403


async def test_an_upload_racing_a_directory_swap_never_writes_outside(
    deep_root: Path, tmp_path: Path
) -> None:
    root = deep_root
    chunk = {"type": "file", "format": "base64", "content": base64.b64encode(b"X").decode()}
    async with contents_client(root) as client:

        async def put() -> Any:
            return await client.put("/api/contents/race/d/f.txt", json=chunk | {"chunk": 1})

        response = await _held(
            client,
            str(root / "race" / "d" / "f.txt"),
            put,
            lambda: _swap_through_directory_moves(client, root),
        )
        assert response.status_code == 403, response.text
        assert len(service(client).uploads) == 0
    assert (tmp_path / "f.txt").read_text() == OUTSIDE


async def test_a_delete_racing_a_directory_swap_never_deletes_outside(
    deep_root: Path, tmp_path: Path
) -> None:
    root = deep_root
    async with contents_client(root) as client:

        async def delete() -> Any:
            return await client.delete("/api/contents/race/d/f.txt")

        response = await _held(
            client,
            str(root / "race" / "d" / "f.txt"),
            delete,
            lambda: _swap_through_directory_moves(client, root),
        )
    assert response.status_code == 403, response.text
    assert (tmp_path / "f.txt").read_text() == OUTSIDE


async def test_a_rename_racing_a_directory_swap_never_moves_outside_files(
    deep_root: Path, tmp_path: Path
) -> None:
    root = deep_root
    async with contents_client(root) as client:

        async def rename() -> Any:
            return await client.patch("/api/contents/race/d/f.txt", json={"path": "got.txt"})

        response = await _held(
            client,
            str(root / "race" / "d" / "f.txt"),
            rename,
            lambda: _swap_through_directory_moves(client, root),
        )
    assert response.status_code == 403, response.text
    assert (tmp_path / "f.txt").read_text() == OUTSIDE
    assert not (root / "got.txt").exists()


@pytest.mark.parametrize(
    ("method", "url"),
    [
        ("POST", "race/d/f.txt/checkpoints"),
        ("POST", "race/d/f.txt/checkpoints/checkpoint"),
        ("DELETE", "race/d/f.txt/checkpoints/checkpoint"),
    ],
)
async def test_checkpoints_racing_a_directory_swap_never_touch_outside(
    deep_root: Path, tmp_path: Path, method: str, url: str
) -> None:
    root = deep_root
    (tmp_path / ".ipynb_checkpoints").mkdir()
    stored = tmp_path / ".ipynb_checkpoints" / "f-checkpoint.txt"
    stored.write_text("OUTSIDE checkpoint")
    async with contents_client(root) as client:

        async def call() -> Any:
            return await client.request(method, f"/api/contents/{url}")

        response = await _held(
            client,
            str(root / "race" / "d" / "f.txt"),
            call,
            lambda: _swap_through_directory_moves(client, root),
        )
    assert response.status_code == 403, response.text
    assert (tmp_path / "f.txt").read_text() == OUTSIDE
    assert stored.read_text() == "OUTSIDE checkpoint"
