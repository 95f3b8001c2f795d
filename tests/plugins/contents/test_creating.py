"""Untitled names and copies: Jupyter's naming, and no two clients get one name."""

from __future__ import annotations

import itertools
import os
from pathlib import Path
from typing import Any

import anyio
import pytest

from junction.plugins.contents.creating import candidate_names

pytestmark = pytest.mark.anyio


@pytest.mark.parametrize(
    ("name", "insert", "expected"),
    [
        ("untitled.txt", "", ["untitled.txt", "untitled1.txt", "untitled2.txt"]),
        ("Untitled Folder", " ", ["Untitled Folder", "Untitled Folder 1", "Untitled Folder 2"]),
        ("a.tar.gz", "-Copy", ["a.tar.gz", "a-Copy1.tar.gz", "a-Copy2.tar.gz"]),
        ("x.y.ipynb", "-Copy", ["x.y.ipynb", "x.y-Copy1.ipynb", "x.y-Copy2.ipynb"]),
    ],
)
def test_candidate_names_follow_jupyter(name: str, insert: str, expected: list[str]) -> None:
    assert list(itertools.islice(candidate_names(name, insert), 3)) == expected


async def test_concurrent_creations_get_distinct_names(client: Any, root: Path) -> None:
    (root / "a.txt").write_text("a")
    created: list[str] = []

    async def create(body: dict[str, str]) -> None:
        response = await client.post("/api/contents", json=body)
        assert response.status_code == 201, response.text
        created.append(response.json()["name"])

    async with anyio.create_task_group() as group:
        for _ in range(8):
            group.start_soon(create, {"type": "notebook"})
            group.start_soon(create, {"type": "directory"})
            group.start_soon(create, {"copy_from": "a.txt"})
    assert len(created) == len(set(created)) == 24
    assert len(os.listdir(root)) == 25
    assert not [name for name in os.listdir(root) if name.startswith(".")]


async def test_invalid_extensions_are_refused(client: Any, root: Path) -> None:
    for ext, status in (("/../x", 400), ("\\x", 400), ("%2fx", 400)):
        response = await client.post("/api/contents", json={"type": "file", "ext": ext})
        assert response.status_code == status, ext
    assert os.listdir(root) == []
