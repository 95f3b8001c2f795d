"""Chunked uploads: order, atomicity, restarts, expiry."""

from __future__ import annotations

import base64
import os
import stat
import time
from pathlib import Path
from typing import Any

import pytest

from junction.plugins.contents.atomic import AtomicFile
from junction.plugins.contents.uploads import Upload, Uploads

from .conftest import service

pytestmark = pytest.mark.anyio


def chunk(number: int, data: bytes, **extra: Any) -> dict[str, Any]:
    """One PUT body of an upload."""
    return {
        "type": "file",
        "format": "base64",
        "content": base64.b64encode(data).decode(),
        "chunk": number,
        **extra,
    }


async def test_upload_in_chunks_appears_whole_at_the_last_chunk(client: Any, root: Path) -> None:
    parts = [os.urandom(1000), os.urandom(2000), os.urandom(500)]
    response = await client.put("/api/contents/up.bin", json=chunk(1, parts[0]))
    assert response.status_code == 200
    assert response.json()["size"] == 1000
    assert response.json()["path"] == "up.bin"
    assert not (root / "up.bin").exists()
    response = await client.put("/api/contents/up.bin", json=chunk(2, parts[1]))
    assert (response.status_code, response.json()["size"]) == (200, 3000)
    assert not (root / "up.bin").exists()
    response = await client.put("/api/contents/up.bin", json=chunk(-1, parts[2]))
    assert response.status_code == 201
    assert response.json()["size"] == 3500
    assert (root / "up.bin").read_bytes() == b"".join(parts)
    assert os.listdir(root) == ["up.bin"]
    assert len(service(client).uploads) == 0


async def test_upload_over_a_file_keeps_it_until_the_end_and_keeps_its_mode(
    client: Any, root: Path
) -> None:
    (root / "data.txt").write_text("old")
    os.chmod(root / "data.txt", 0o640)
    await client.put("/api/contents/data.txt", json=chunk(1, b"new "))
    assert (root / "data.txt").read_text() == "old"
    text_chunk = {"type": "file", "format": "text", "content": "text", "chunk": -1}
    response = await client.put("/api/contents/data.txt", json=text_chunk)
    assert response.status_code == 200
    assert (root / "data.txt").read_text() == "new text"
    assert stat.S_IMODE((root / "data.txt").stat().st_mode) == 0o640


async def test_chunks_out_of_order_are_refused(client: Any, root: Path) -> None:
    response = await client.put("/api/contents/u.bin", json=chunk(2, b"x"))
    assert response.status_code == 400
    assert response.json() == {
        "message": "no upload of 'u.bin' is in progress; send chunk 1 first",
        "reason": "Bad Request",
    }
    await client.put("/api/contents/u.bin", json=chunk(1, b"a"))
    response = await client.put("/api/contents/u.bin", json=chunk(3, b"c"))
    assert response.status_code == 400
    assert response.json()["message"] == (
        "chunk 3 of 'u.bin' does not follow chunk 1; start again with chunk 1"
    )
    for bad in (0, -2):
        response = await client.put("/api/contents/u.bin", json=chunk(bad, b"c"))
        assert response.status_code == 400
        assert response.json()["message"] == "chunk must be 1, 2, 3, ... or -1 for the last one"
    assert not (root / "u.bin").exists()


async def test_chunk_one_starts_over_and_a_bad_chunk_can_be_resent(client: Any, root: Path) -> None:
    await client.put("/api/contents/u.bin", json=chunk(1, b"first try"))
    await client.put("/api/contents/u.bin", json=chunk(1, b"A"))
    bad = chunk(2, b"") | {"content": "%%%"}
    assert (await client.put("/api/contents/u.bin", json=bad)).status_code == 400
    await client.put("/api/contents/u.bin", json=chunk(2, b"B"))
    assert (await client.put("/api/contents/u.bin", json=chunk(-1, b"C"))).status_code == 201
    assert (root / "u.bin").read_bytes() == b"ABC"


async def test_chunks_are_for_files_only(client: Any) -> None:
    body = chunk(1, b"x") | {"type": "notebook"}
    response = await client.put("/api/contents/n.ipynb", json=body)
    assert response.status_code == 400
    assert response.json()["message"] == (
        'File type "notebook" is not supported for large file transfer'
    )
    response = await client.put("/api/contents/missing/u.bin", json=chunk(1, b"x"))
    assert response.status_code == 404
    assert response.json()["message"] == "directory 'missing' does not exist"


async def test_idle_uploads_are_discarded(client: Any, root: Path) -> None:
    contents = service(client)
    await client.put("/api/contents/slow.bin", json=chunk(1, b"x"))
    upload = contents.uploads.get(str(root / "slow.bin"))
    assert upload is not None
    upload.touched -= contents.settings.upload_idle_timeout + 1
    await client.put(
        "/api/contents/other.txt", json={"type": "file", "format": "text", "content": ""}
    )
    assert contents.uploads.get(str(root / "slow.bin")) is None
    response = await client.put("/api/contents/slow.bin", json=chunk(-1, b"y"))
    assert response.status_code == 400
    assert sorted(os.listdir(root)) == ["other.txt"]


def test_upload_registry_expiry_and_close(tmp_path: Path, tmp_dir_fd: int) -> None:
    uploads = Uploads(idle_timeout=10)
    first = Upload(file=AtomicFile(tmp_dir_fd), created=True, mode=None)
    second = Upload(file=AtomicFile(tmp_dir_fd), created=True, mode=None)
    uploads.start("a", first)
    uploads.start("a", second)  # replaces and discards the first
    assert first.file._closed
    assert uploads.expired(time.monotonic()) == []
    assert uploads.expired(time.monotonic() + 11) == ["a"]
    uploads.close()
    assert second.file._closed
    assert len(uploads) == 0
    assert os.listdir(tmp_path) == []
