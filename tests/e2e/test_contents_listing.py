"""Listing speed on the real server: 10,000- and 100,000-entry directories.

Prints the measured times (run with ``-s``); asserts generous bounds only, so a loaded CI
machine does not fail it, while an accidental O(n) per page or a per-entry round trip
still does. Targets (docs/contents.md): a whole 10,000-entry listing well under 0.1 s and
the first page of 100,000 entries under 50 ms.
"""

from __future__ import annotations

import os
import stat
import statistics
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from junction.testing import TEST_TOKEN, ServerProcess

pytestmark = pytest.mark.e2e


def _fill(directory: Path, count: int) -> None:
    directory.mkdir()
    fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY)
    try:
        for index in range(count):
            # mknod makes an empty regular file in one system call (open + close take two)
            os.mknod(f"file_{index:06d}.txt", 0o644 | stat.S_IFREG, dir_fd=fd)
    finally:
        os.close(fd)
    old = time.time() - 60  # as a directory not changed for a while (cache eligible)
    os.utime(directory, (old, old))


@pytest.fixture(scope="module")
def big(tmp_path_factory: pytest.TempPathFactory) -> Iterator[httpx.Client]:
    base = tmp_path_factory.mktemp("listing")
    root = base / "root"
    root.mkdir()
    _fill(root / "d10k", 10_000)
    _fill(root / "d100k", 100_000)
    with (
        ServerProcess(
            [
                "--profile",
                "contents",
                "--port",
                "0",
                "--root-dir",
                str(root),
                "--log-level",
                "warning",
            ],
            log_path=base / "server.log",
        ) as process,
        httpx.Client(
            base_url=process.url, headers={"Authorization": f"token {TEST_TOKEN}"}, timeout=120
        ) as client,
    ):
        assert client.get("api/contents?content=0").status_code == 200  # warm the process
        yield client


def _timed(client: httpx.Client, url: str) -> tuple[float, httpx.Response]:
    started = time.perf_counter()
    response = client.get(url)
    elapsed = time.perf_counter() - started
    assert response.status_code == 200, response.text
    return elapsed, response


def _report(label: str, seconds: list[float]) -> None:
    shown = ", ".join(f"{value * 1000:.1f}" for value in seconds)
    print(f"\n{label}: median {statistics.median(seconds) * 1000:.1f} ms [{shown}]")


def test_first_page_of_100000_entries(big: httpx.Client) -> None:
    cold, response = _timed(big, "api/contents/d100k?limit=100")
    model = response.json()
    assert [entry["name"] for entry in model["content"]] == [
        f"file_{index:06d}.txt" for index in range(100)
    ]
    assert model["pagination"]["total"] == 100_000
    assert model["pagination"]["next"] == "file_000099.txt"
    warm = [_timed(big, "api/contents/d100k?limit=100")[0] for _ in range(7)]
    middle = [
        _timed(big, "api/contents/d100k?limit=100&after=file_050000.txt")[0] for _ in range(5)
    ]
    _report("100k first page, cold", [cold])
    _report("100k first page, warm", warm)
    _report("100k page in the middle", middle)
    assert cold < 2.0
    assert statistics.median(warm) < 0.25
    assert statistics.median(middle) < 0.25


def test_whole_listing_of_10000_entries(big: httpx.Client) -> None:
    times = []
    for _ in range(7):
        elapsed, response = _timed(big, "api/contents/d10k")
        times.append(elapsed)
    assert len(response.json()["content"]) == 10_000
    _report("10k whole listing", times)
    assert statistics.median(times) < 1.0


def test_whole_listing_of_100000_entries(big: httpx.Client) -> None:
    times = []
    for _ in range(2):
        elapsed, response = _timed(big, "api/contents/d100k")
        times.append(elapsed)
    content = response.json()["content"]
    assert len(content) == 100_000
    assert content[-1]["name"] == "file_099999.txt"
    _report("100k whole listing", times)
    assert min(times) < 10.0
