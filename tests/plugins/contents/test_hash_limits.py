"""``hash=1`` reads no more than a whole-file read may: the ``max_read_mb`` limit.

A hash covers the whole file, so it is bounded like a whole-file read: a file above the
limit is a 400 naming it, and so is a file that yields more than its ``stat`` size (a procfs
file reports size 0 and may stream on for gigabytes; ``/proc/<pid>/pagemap`` has 8 bytes
for every page of the address space, hundreds of GiB), instead of a worker thread busy for
minutes.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from junction.testing import TEST_TOKEN, ServerProcess

from .conftest import contents_client

pytestmark = pytest.mark.anyio

MIB = 1 << 20
ANSWER_WITHIN = 30.0
"""Seconds a bounded hash may take on a loaded machine; an unbounded one of ``pagemap``
takes minutes."""


@pytest.fixture(scope="module")
def procfs_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A real server whose root is its own procfs directory (``/proc/self`` seen from the
    server), with a 1 MiB whole-read limit; yields its base URL."""
    log = tmp_path_factory.mktemp("procfs") / "server.log"
    args = ["--profile", "contents", "--port", "0", "--root-dir", "/proc/self"]
    with ServerProcess([*args, "--set", "contents.max_read_mb=1"], log_path=log) as server:
        yield server.url


@pytest.mark.parametrize("content", ["0", "1"])
def test_hashing_a_procfs_file_that_streams_on_stops_at_the_limit(
    procfs_server: str, content: str
) -> None:
    response = httpx.get(
        f"{procfs_server}api/contents/pagemap",
        params={"type": "file", "content": content, "hash": "1"},
        headers={"Authorization": f"token {TEST_TOKEN}"},
        timeout=ANSWER_WITHIN,
    )
    assert response.status_code == 400, response.text
    body = response.json()
    assert "'pagemap'" in body["message"]
    assert "limit" in body["message"]


async def test_hashing_a_file_above_the_limit_is_refused(root: Path) -> None:
    with (root / "big.bin").open("wb") as sparse:
        sparse.truncate(2 * MIB)
    async with contents_client(root, max_read_mb=1) as client:
        for params in (
            {"content": "0", "hash": "1"},
            {"content": "1", "hash": "1", "offset": "0", "length": "16"},
        ):
            response = await client.get("/api/contents/big.bin", params=params)
            assert response.status_code == 400, response.text
            message = response.json()["message"]
            assert "'big.bin' is 2.0 MiB, above the 1 MiB limit for hashes" in message
        ranged = await client.get(
            "/api/contents/big.bin", params={"content": "1", "offset": "0", "length": "16"}
        )
        assert ranged.status_code == 200  # without a hash, a range of a big file is fine


async def test_a_file_within_the_limit_is_hashed_whole(root: Path) -> None:
    data = bytes(range(256)) * (4 * 1024 + 1)  # 1 MiB + 256 bytes: two blocks
    (root / "data.bin").write_bytes(data)
    async with contents_client(root, max_read_mb=2) as client:
        for params in (
            {"content": "0", "hash": "1"},
            {"content": "1", "hash": "1", "offset": "10", "length": "5"},
        ):
            response = await client.get("/api/contents/data.bin", params=params)
            assert response.status_code == 200, response.text
            assert response.json()["hash"] == hashlib.sha256(data).hexdigest()
