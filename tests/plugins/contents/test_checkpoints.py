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
