"""A real out-of-space failure: the server runs under a file size limit.

No privileges are needed: the server process gets ``RLIMIT_FSIZE`` (2 MiB) with
``SIGXFSZ`` ignored, so the kernel itself refuses the write that crosses the limit with
``EFBIG`` after a short write, exactly like a full disk refuses with ``ENOSPC``. (Mounting
a tiny tmpfs would need root; the ENOSPC and EDQUOT errnos are covered in-process through
the ``write_block`` hook, tests/plugins/contents/test_atomic.py.)
"""

from __future__ import annotations

import base64
import os
import re
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from junction.testing import TEST_TOKEN

pytestmark = pytest.mark.e2e

LIMIT = 2 * 1024 * 1024
LAUNCH = """
import resource, runpy, signal, sys
signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
resource.setrlimit(resource.RLIMIT_FSIZE, ({limit}, {limit}))
sys.argv = ["junction"] + sys.argv[1:]
runpy.run_module("junction.cli", run_name="__main__")
"""
BANNER = re.compile(r"(http://127\.0\.0\.1:\d+)/")


@pytest.fixture
def limited(tmp_path: Path) -> Iterator[tuple[httpx.Client, Path]]:
    """A client of a server limited to 2 MiB files, and the server's root."""
    root = tmp_path / "root"
    root.mkdir()
    log_path = tmp_path / "server.log"
    command = [
        sys.executable,
        "-c",
        LAUNCH.format(limit=LIMIT),
        *("--profile", "contents", "--port", "0", "--no-browser", "--token", TEST_TOKEN),
        *("--root-dir", str(root), "--set", "contents.delete_to_trash=false"),
    ]
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            command,
            stdout=log,
            stderr=subprocess.STDOUT,
            env={**os.environ, "PYTHONUNBUFFERED": "1"},
            start_new_session=True,
        )
    try:
        deadline = time.monotonic() + 60
        while (match := BANNER.search(log_path.read_text(errors="replace"))) is None:
            assert process.poll() is None, log_path.read_text()
            assert time.monotonic() < deadline, "server did not start"
            time.sleep(0.05)
        with httpx.Client(
            base_url=match.group(1) + "/",
            headers={"Authorization": f"token {TEST_TOKEN}"},
            timeout=60,
        ) as client:
            yield client, root
    finally:
        process.terminate()
        process.wait(30)


WHY = "the file is larger than the file system or the server's file size limit allows"


def test_save_past_the_limit_is_507_and_the_old_file_survives(
    limited: tuple[httpx.Client, Path],
) -> None:
    client, root = limited
    (root / "data.txt").write_text("the previous version")
    body = {"type": "file", "format": "text", "content": "y" * (3 * 1024 * 1024)}
    response = client.put("api/contents/data.txt", json=body)
    assert response.status_code == 507
    assert response.json() == {
        "message": f"cannot save 'data.txt': {WHY}; nothing was changed",
        "reason": "Insufficient Storage",
    }
    assert (root / "data.txt").read_text() == "the previous version"
    assert os.listdir(root) == ["data.txt"]
    response = client.put("api/contents/new.txt", json=body)
    assert response.status_code == 507
    assert os.listdir(root) == ["data.txt"]
    small = {"type": "file", "format": "text", "content": "fits"}
    assert client.put("api/contents/data.txt", json=small).status_code == 200
    assert (root / "data.txt").read_text() == "fits"


def test_upload_past_the_limit_fails_at_the_chunk_that_crosses_it(
    limited: tuple[httpx.Client, Path],
) -> None:
    client, root = limited
    (root / "upload.bin").write_bytes(b"old")
    block = base64.b64encode(b"z" * (900 * 1024)).decode()
    statuses = []
    for number in (1, 2, 3, -1):
        response = client.put(
            "api/contents/upload.bin",
            json={"type": "file", "format": "base64", "chunk": number, "content": block},
        )
        statuses.append(response.status_code)
    assert statuses == [200, 200, 507, 400]
    assert (root / "upload.bin").read_bytes() == b"old"
    assert os.listdir(root) == ["upload.bin"]
