"""Atomic saves: full disks, leftovers, locks, and many writers on one notebook.

A full disk is simulated through ``LocalContents.write_block``, the documented hook every
saved byte goes through: it writes part of the data for real, then fails with the errno a
full disk, a quota or the file size limit gives, which is what the kernel does. (A real
``RLIMIT_FSIZE`` failure is exercised against a subprocess server in tests/e2e.)
"""

from __future__ import annotations

import base64
import errno
import json
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import anyio
import pytest

from junction.plugins.contents.atomic import AtomicFile, PathLocks, rename_noreplace

from .conftest import service
from .test_routes import notebook

pytestmark = pytest.mark.anyio


def failing_after(budget: int, code: int) -> Callable[[int, memoryview], int]:
    """A ``write_block`` that writes ``budget`` bytes in total, then fails with ``code``."""
    left = budget

    def write(fd: int, data: memoryview) -> int:
        nonlocal left
        if left <= 0:
            raise OSError(code, os.strerror(code))
        written = os.write(fd, data[:left])
        left -= written
        return written

    return write


def leftovers(directory: Path) -> list[str]:
    return sorted(name for name in os.listdir(directory) if name.startswith(".~"))


@pytest.mark.parametrize(
    ("code", "why"),
    [
        (errno.ENOSPC, "the disk is full"),
        (errno.EDQUOT, "the disk quota is exceeded"),
        (
            errno.EFBIG,
            "the file is larger than the file system or the server's file size limit allows",
        ),
    ],
)
async def test_full_disk_during_save_is_507_and_keeps_the_old_file(
    client: Any, root: Path, code: int, why: str
) -> None:
    (root / "data.txt").write_text("precious")
    service(client).write_block = failing_after(4096, code)
    body = {"type": "file", "format": "text", "content": "x" * 100_000}
    response = await client.put("/api/contents/data.txt", json=body)
    assert response.status_code == 507
    assert response.json() == {
        "message": f"cannot save 'data.txt': {why}; nothing was changed",
        "reason": "Insufficient Storage",
    }
    assert (root / "data.txt").read_text() == "precious"
    assert os.listdir(root) == ["data.txt"]
    response = await client.put("/api/contents/new.txt", json=body)
    assert response.status_code == 507
    assert os.listdir(root) == ["data.txt"]


async def test_full_disk_everywhere_bytes_are_written(client: Any, root: Path) -> None:
    (root / "a.txt").write_text("a" * 10_000)
    (root / "n.ipynb").write_text(json.dumps(notebook("x")))
    before = sorted(os.listdir(root))
    contents = service(client)
    contents.write_block = failing_after(100, errno.ENOSPC)
    chunk = {"type": "file", "format": "base64", "chunk": 1}
    calls = [
        ("PUT", "/api/contents/n.ipynb", {"type": "notebook", "content": notebook("y" * 500)}),
        ("POST", "/api/contents", {"copy_from": "a.txt"}),
        ("POST", "/api/contents/a.txt/checkpoints", None),
        ("PUT", "/api/contents/u.bin", chunk | {"content": base64.b64encode(b"z" * 500).decode()}),
    ]
    for method, url, body in calls:
        contents.write_block = failing_after(100, errno.ENOSPC)
        response = await client.request(method, url, json=body)
        assert response.status_code == 507, (url, response.text)
        assert "the disk is full" in response.json()["message"]
        assert str(root) not in response.text
    assert len(contents.uploads) == 0
    contents.write_block = failing_after(0, errno.ENOSPC)
    response = await client.post("/api/contents", json={"type": "notebook"})
    assert response.status_code == 507
    checkpoints = root / ".ipynb_checkpoints"
    assert not checkpoints.exists() or os.listdir(checkpoints) == []
    assert sorted(os.listdir(root)) in (before, sorted([*before, ".ipynb_checkpoints"]))
    assert (root / "a.txt").read_text() == "a" * 10_000


async def test_full_disk_in_the_middle_of_an_upload(client: Any, root: Path) -> None:
    (root / "big.bin").write_bytes(b"old")
    first = {"type": "file", "format": "base64", "chunk": 1, "content": "AAAA"}
    assert (await client.put("/api/contents/big.bin", json=first)).status_code == 200
    service(client).write_block = failing_after(1, errno.ENOSPC)
    second = first | {"chunk": 2, "content": base64.b64encode(b"b" * 1000).decode()}
    response = await client.put("/api/contents/big.bin", json=second)
    assert response.status_code == 507
    assert (root / "big.bin").read_bytes() == b"old"
    service(client).write_block = os.write
    last = first | {"chunk": -1}
    assert (await client.put("/api/contents/big.bin", json=last)).status_code == 400
    assert os.listdir(root) == ["big.bin"]


@pytest.mark.parametrize("anonymous", [True, False])
def test_atomic_file_commits_whole_or_not_at_all(
    tmp_path: Path, tmp_dir_fd: int, monkeypatch: pytest.MonkeyPatch, anonymous: bool
) -> None:
    if not anonymous:  # the fallback: a named hidden temporary file
        monkeypatch.delattr(os, "O_TMPFILE")
    target = tmp_path / "t.txt"
    target.write_text("old")
    with AtomicFile(tmp_dir_fd) as new:
        new.write(b"half")
        assert target.read_text() == "old"
    assert os.listdir(tmp_path) == ["t.txt"]
    with AtomicFile(tmp_dir_fd) as new:
        new.write(b"new")
        new.truncate()
        new.write(b"newer")
        new.commit("t.txt", mode=0o600)
    assert target.read_text() == "newer"
    assert (target.stat().st_mode & 0o777) == 0o600
    with AtomicFile(tmp_dir_fd) as new:
        new.write(b"x")
        with pytest.raises(FileExistsError):
            new.commit("t.txt", exclusive=True)
        new.commit("u.txt", exclusive=True)
    assert sorted(os.listdir(tmp_path)) == ["t.txt", "u.txt"]


def test_rename_noreplace(tmp_path: Path) -> None:
    (tmp_path / "a").write_text("a")
    (tmp_path / "b").write_text("b")
    with pytest.raises(FileExistsError):
        rename_noreplace(str(tmp_path / "a"), str(tmp_path / "b"))
    rename_noreplace(str(tmp_path / "a"), str(tmp_path / "c"))
    assert sorted(os.listdir(tmp_path)) == ["b", "c"]


async def test_path_locks_serialise_holders_and_forget_unused_keys() -> None:
    locks = PathLocks()
    order: list[str] = []
    inside = anyio.Event()
    release = anyio.Event()

    async def first() -> None:
        async with locks.hold("/p", "/q"):
            order.append("first in")
            inside.set()
            await release.wait()
            order.append("first out")

    async def second() -> None:
        await inside.wait()
        async with locks.hold("/q"):
            order.append("second in")

    async with anyio.create_task_group() as group:
        group.start_soon(first)
        group.start_soon(second)
        await inside.wait()
        assert locks.busy("/q")
        release.set()
    assert order == ["first in", "first out", "second in"]
    assert not locks.busy("/p")
    assert not locks.busy("/q")


async def test_sixteen_writers_and_readers_never_see_a_broken_notebook(
    client: Any, root: Path
) -> None:
    versions = [
        notebook(f"writer {writer} version {n}" * 50) for writer in range(16) for n in range(4)
    ]
    sources = {version["cells"][0]["source"] for version in versions}
    (root / "shared.ipynb").write_text(json.dumps(notebook("start" * 50)))
    sources.add("start" * 50)
    problems: list[str] = []

    async def writer(index: int) -> None:
        for n in range(4):
            body = {"type": "notebook", "content": versions[index * 4 + n]}
            response = await client.put("/api/contents/shared.ipynb", json=body)
            if response.status_code != 200:
                problems.append(f"writer {index}: {response.status_code} {response.text}")

    async def reader(index: int) -> None:
        for _ in range(6):
            response = await client.get("/api/contents/shared.ipynb")
            if response.status_code != 200:
                problems.append(f"reader {index}: {response.status_code} {response.text}")
                continue
            source = response.json()["content"]["cells"][0]["source"]
            if source not in sources:
                problems.append(f"reader {index}: unknown content")

    async with anyio.create_task_group() as group:
        for index in range(16):
            group.start_soon(writer, index)
            group.start_soon(reader, index)
    assert problems == []
    final = json.loads((root / "shared.ipynb").read_text())
    assert "".join(final["cells"][0]["source"]) in sources
    assert os.listdir(root) == ["shared.ipynb"]
    assert not service(client).locks.busy(str(root / "shared.ipynb"))
