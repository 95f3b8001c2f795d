"""Checkpoints: create, list, restore, delete, and following renames and deletes."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest

pytestmark = pytest.mark.anyio


async def test_checkpoint_lifecycle(client: Any, root: Path) -> None:
    (root / "d").mkdir()
    path = root / "d" / "n.ipynb"
    path.write_text("first")
    assert (await client.get("/api/contents/d/n.ipynb/checkpoints")).json() == []
    response = await client.post("/api/contents/d/n.ipynb/checkpoints")
    assert response.status_code == 201
    assert response.headers["location"] == "/api/contents/d/n.ipynb/checkpoints/checkpoint"
    checkpoint = response.json()
    assert set(checkpoint) == {"id", "last_modified"}
    assert checkpoint["id"] == "checkpoint"
    assert (root / "d" / ".ipynb_checkpoints" / "n-checkpoint.ipynb").read_text() == "first"
    listed = (await client.get("/api/contents/d/n.ipynb/checkpoints")).json()
    assert listed == [checkpoint]
    path.write_text("second")
    response = await client.post("/api/contents/d/n.ipynb/checkpoints/checkpoint")
    assert (response.status_code, response.content) == (204, b"")
    assert path.read_text() == "first"
    response = await client.delete("/api/contents/d/n.ipynb/checkpoints/checkpoint")
    assert response.status_code == 204
    assert (await client.get("/api/contents/d/n.ipynb/checkpoints")).json() == []


@pytest.mark.parametrize(
    ("method", "url", "status", "message"),
    [
        ("POST", "a.txt/checkpoints/checkpoint", 404, "checkpoint 'checkpoint' of 'a.txt' "),
        ("DELETE", "a.txt/checkpoints/other", 404, "checkpoint 'other' of 'a.txt' does not"),
        ("POST", "a.txt/checkpoints/bad%20id", 404, "checkpoint 'bad id' of 'a.txt' does not"),
        ("POST", "d/checkpoints", 400, "'d' is not a file; only files have checkpoints"),
        ("POST", "missing/checkpoints", 404, "file or directory 'missing' does not exist"),
        ("GET", "missing/checkpoints", 404, "file or directory 'missing' does not exist"),
    ],
)
async def test_checkpoint_refusals(
    client: Any, root: Path, method: str, url: str, status: int, message: str
) -> None:
    (root / "a.txt").write_text("a")
    (root / "d").mkdir()
    response = await client.request(method, f"/api/contents/{url}")
    assert response.status_code == status
    assert response.json()["message"].startswith(message)


async def test_checkpoints_follow_renames_and_deletes(client: Any, root: Path) -> None:
    (root / "a.txt").write_text("a")
    assert (await client.post("/api/contents/a.txt/checkpoints")).status_code == 201
    await client.patch("/api/contents/a.txt", json={"path": "b.txt"})
    assert (await client.get("/api/contents/b.txt/checkpoints")).json()[0]["id"] == "checkpoint"
    assert not (root / ".ipynb_checkpoints" / "a-checkpoint.txt").exists()
    await client.delete("/api/contents/b.txt")
    assert os.listdir(root / ".ipynb_checkpoints") == []


@pytest.fixture
def linked_out(root: Path, tmp_path: Path) -> Path:
    """``cp/.ipynb_checkpoints`` is a link to a directory outside the root."""
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "a-checkpoint.txt").write_text("OUTSIDE")
    (root / "cp").mkdir()
    (root / "cp" / "a.txt").write_text("inside")
    os.symlink(outside, root / "cp" / ".ipynb_checkpoints")
    return outside


LEAVING = "the checkpoint directory of 'cp/a.txt' leads outside the root directory"


@pytest.mark.parametrize(
    ("method", "url"),
    [
        ("GET", "cp/a.txt/checkpoints"),
        ("POST", "cp/a.txt/checkpoints"),
        ("POST", "cp/a.txt/checkpoints/checkpoint"),
        ("DELETE", "cp/a.txt/checkpoints/checkpoint"),
    ],
)
async def test_a_checkpoint_directory_linked_outside_is_refused(
    client: Any, root: Path, linked_out: Path, method: str, url: str
) -> None:
    response = await client.request(method, f"/api/contents/{url}")
    assert response.status_code == 403, response.text
    assert response.json()["message"].startswith(LEAVING)
    assert (root / "cp" / "a.txt").read_text() == "inside"
    assert os.listdir(linked_out) == ["a-checkpoint.txt"]
    assert (linked_out / "a-checkpoint.txt").read_text() == "OUTSIDE"


async def test_renames_and_deletes_leave_an_outside_checkpoint_directory_alone(
    client: Any, root: Path, linked_out: Path
) -> None:
    (root / "other.txt").write_text("other")
    assert (await client.post("/api/contents/other.txt/checkpoints")).status_code == 201
    response = await client.patch("/api/contents/other.txt", json={"path": "cp/other.txt"})
    assert response.status_code == 200  # the file moves; its checkpoint stays in the root
    assert (root / ".ipynb_checkpoints" / "other-checkpoint.txt").read_text() == "other"
    response = await client.patch("/api/contents/cp/a.txt", json={"path": "cp/b.txt"})
    assert response.status_code == 200
    assert (await client.delete("/api/contents/cp/b.txt")).status_code == 204
    assert os.listdir(linked_out) == ["a-checkpoint.txt"]
    assert (linked_out / "a-checkpoint.txt").read_text() == "OUTSIDE"


async def test_a_checkpoint_file_linked_anywhere_is_not_restored(
    client: Any, root: Path, tmp_path: Path
) -> None:
    (tmp_path / "secret.txt").write_text("OUTSIDE")
    (root / "a.txt").write_text("a")
    (root / ".ipynb_checkpoints").mkdir()
    os.symlink(tmp_path / "secret.txt", root / ".ipynb_checkpoints" / "a-checkpoint.txt")
    response = await client.post("/api/contents/a.txt/checkpoints/checkpoint")
    assert response.status_code == 404
    assert (root / "a.txt").read_text() == "a"
    assert (await client.get("/api/contents/a.txt/checkpoints")).json() == []
    response = await client.delete("/api/contents/a.txt/checkpoints/checkpoint")
    assert response.status_code == 404
    assert (tmp_path / "secret.txt").read_text() == "OUTSIDE"


async def test_a_checkpoint_directory_linked_inside_the_root_is_used(
    client: Any, root: Path
) -> None:
    (root / "store").mkdir()
    (root / "d").mkdir()
    (root / "d" / "a.txt").write_text("a")
    os.symlink("../store", root / "d" / ".ipynb_checkpoints")
    assert (await client.post("/api/contents/d/a.txt/checkpoints")).status_code == 201
    assert (root / "store" / "a-checkpoint.txt").read_text() == "a"


async def test_a_checkpoint_directory_linked_to_a_hidden_directory_is_refused(
    client: Any, root: Path
) -> None:
    (root / ".ssh").mkdir()
    (root / ".ssh" / "a-checkpoint.txt").write_text("hidden")
    (root / "d").mkdir()
    (root / "d" / "a.txt").write_text("a")
    os.symlink("../.ssh", root / "d" / ".ipynb_checkpoints")
    for method, url in (("POST", "checkpoints"), ("POST", "checkpoints/checkpoint")):
        response = await client.request(method, f"/api/contents/d/a.txt/{url}")
        assert response.status_code == 400, response.text
        assert "hidden directory" in response.json()["message"]
    assert (root / "d" / "a.txt").read_text() == "a"
    assert (root / ".ssh" / "a-checkpoint.txt").read_text() == "hidden"
