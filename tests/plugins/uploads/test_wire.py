"""Resumable uploads on a real ``junction`` process with real tus clients: tuspy, and
tus-js-client under Node, each interrupted mid-way and resumed; a connection cut in the
middle of a PATCH body; the server's memory while a large upload streams through it."""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit

import httpx
import pytest
from tusclient.client import TusClient

from junction.testing import TEST_TOKEN, ServerProcess

pytestmark = [pytest.mark.e2e]

AUTH = {"Authorization": f"token {TEST_TOKEN}"}
TUS = {**AUTH, "Tus-Resumable": "1.0.0"}
NODE_PROJECT = Path(__file__).resolve().parents[2] / "uploads" / "node"
MiB = 1 << 20


@pytest.fixture(scope="module")
def root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The server's root directory, with a folder ``in`` for uploads."""
    path = tmp_path_factory.mktemp("uploads-root")
    (path / "in").mkdir()
    return path


@pytest.fixture(scope="module")
def server(root: Path) -> Iterator[ServerProcess]:
    """One ``junction`` serving contents and uploads for the whole module."""
    args = ["--profile", "none", "--enable", "contents", "--enable", "uploads"]
    args += ["--port", "0", "--root-dir", str(root)]
    process = ServerProcess(args, log_path=root.parent / "uploads-server.log").start()
    try:
        yield process
    finally:
        process.stop()


def random_file(path: Path, size: int) -> Path:
    """``size`` random bytes at ``path``."""
    path.write_bytes(os.urandom(size))
    return path


def offset(server: ServerProcess, location: str) -> int:
    """The server's ``Upload-Offset`` for an upload."""
    response = httpx.head(location, headers=TUS)
    assert response.status_code == 200, response.status_code
    return int(response.headers["upload-offset"])


def wait_offset(server: ServerProcess, location: str, expected: int) -> None:
    """Wait (at most 30 s) until the server has recorded ``expected`` bytes."""
    deadline = time.monotonic() + 30
    while (found := offset(server, location)) != expected:
        assert time.monotonic() < deadline, f"offset {found}, expected {expected}"
        time.sleep(0.02)


def raw_patch(location: str, at: int, declared: int, send: Path | bytes) -> socket.socket:
    """Open a connection and send a PATCH of ``declared`` bytes at ``at``, then the body
    ``send`` (bytes, or a file sent with ``sendfile``); returns the open socket."""
    url = urlsplit(location)
    sock = socket.create_connection((url.hostname or "localhost", url.port or 80), timeout=120)
    head = (
        f"PATCH {url.path} HTTP/1.1\r\nHost: {url.netloc}\r\n"
        f"Authorization: token {TEST_TOKEN}\r\nTus-Resumable: 1.0.0\r\n"
        "Content-Type: application/offset+octet-stream\r\n"
        f"Upload-Offset: {at}\r\nContent-Length: {declared}\r\n\r\n"
    )
    sock.sendall(head.encode())
    if isinstance(send, bytes):
        sock.sendall(send)
    else:
        with send.open("rb") as body:
            sock.sendfile(body)
    return sock


def create(server: ServerProcess, length: int, name: str) -> str:
    """Create an upload of ``length`` bytes to ``in/<name>``; returns its absolute URL."""
    import base64

    encoded = base64.b64encode(name.encode()).decode()
    path = base64.b64encode(b"in").decode()
    headers = {
        **TUS,
        "Upload-Length": str(length),
        "Upload-Metadata": f"filename {encoded},path {path}",
    }
    created = httpx.post(server.url + "api/uploads", headers=headers)
    assert created.status_code == 201, created.text
    return server.url.rstrip("/") + created.headers["location"]


def test_tuspy_resumes_after_a_connection_cut_mid_patch(
    server: ServerProcess, root: Path, tmp_path: Path
) -> None:
    source = random_file(tmp_path / "data.bin", 6 * MiB + 123)
    data = source.read_bytes()
    client = TusClient(server.url + "api/uploads", headers=AUTH)
    with source.open("rb") as stream:  # tuspy leaves files it opened itself open
        metadata = {"filename": "tuspy.bin", "path": "in"}
        first = client.uploader(file_stream=stream, chunk_size=2 * MiB, metadata=metadata)
        first.upload(stop_at=2 * MiB)
        assert first.url is not None
        assert offset(server, first.url) == 2 * MiB

        # A PATCH announcing 2 MiB whose connection dies after 1 MB and a few bytes: the
        # server keeps exactly the bytes that arrived.
        cut = 2 * MiB + 1_000_003
        sock = raw_patch(first.url, 2 * MiB, 2 * MiB, data[2 * MiB : cut])
        sock.close()
        wait_offset(server, first.url, cut)

        resumed = client.uploader(
            file_stream=stream, url=first.url, chunk_size=2 * MiB, upload_checksum=True
        )
        assert resumed.offset == cut
        resumed.upload()
    assert (root / "in" / "tuspy.bin").read_bytes() == data


def test_tus_js_client_resumes_an_interrupted_upload(
    server: ServerProcess, root: Path, tmp_path: Path
) -> None:
    node = shutil.which("node")
    npm = shutil.which("npm")
    assert node is not None, "Node.js 20+ is needed for the tus-js-client test"
    assert npm is not None, "npm is needed for the tus-js-client test"
    if not (NODE_PROJECT / "node_modules" / "tus-js-client").is_dir():
        subprocess.run(
            [npm, "ci", "--no-audit", "--no-fund"], cwd=NODE_PROJECT, check=True, timeout=110
        )
    source = random_file(tmp_path / "data.bin", 5 * MiB + 7)
    done = subprocess.run(
        [node, "upload.mjs", server.url, TEST_TOKEN, str(source), "in", "js.bin"],
        cwd=NODE_PROJECT,
        capture_output=True,
        text=True,
        timeout=100,
    )
    assert done.returncode == 0, done.stderr
    summary = json.loads(done.stdout.strip().splitlines()[-1])
    assert summary["url"].startswith(server.url + "api/uploads/")
    assert summary["resumedFrom"] >= MiB  # continued, not started over
    assert (root / "in" / "js.bin").read_bytes() == source.read_bytes()


def test_server_memory_stays_flat_during_a_large_upload(
    server: ServerProcess, root: Path, tmp_path: Path
) -> None:
    size = 128 * MiB
    sparse = tmp_path / "zeros.bin"
    with sparse.open("wb") as file:
        file.truncate(size)  # reads as zeros, takes no disk
    location = create(server, size, "large.bin")
    before = _rss_kib(server.pid)
    sock = raw_patch(location, 0, size, sparse)
    with sock:
        answer = sock.recv(65536).decode("latin-1")
    assert answer.startswith("HTTP/1.1 204"), answer
    assert f"upload-offset: {size}" in answer.lower()
    grown = _peak_kib(server.pid) - before
    assert grown < 50 * 1024, f"the server grew by {grown} KiB for a {size >> 20} MiB upload"
    assert (root / "in" / "large.bin").stat().st_size == size
    (root / "in" / "large.bin").unlink()


def _rss_kib(pid: int) -> int:
    return _status_kib(pid, "VmRSS")


def _peak_kib(pid: int) -> int:
    return _status_kib(pid, "VmHWM")


def _status_kib(pid: int, field: str) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    raise AssertionError(f"no {field} for process {pid}")
