"""The contents API on a real ``junction`` process over a real socket.

What only the wire shows: the auth gate on every endpoint, raw request lines that an
in-process client would normalise (literal ``..``, backslashes), streaming of large files,
memory during multi-chunk uploads, the desktop trash, concurrent clients.
"""

from __future__ import annotations

import base64
import hashlib
import http.client
import json
import os
import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
import pytest

from junction.testing import TEST_TOKEN, ServerProcess

pytestmark = pytest.mark.e2e

SECRET = "TOP SECRET outside the root"
AUTH = {"Authorization": f"token {TEST_TOKEN}"}
DENIED = {"message": "Invalid or missing authentication token", "reason": "Forbidden"}


class Wire:
    """A running server, its root, and helpers to talk to it."""

    def __init__(self, process: ServerProcess, root: Path, home: Path) -> None:
        self.process = process
        self.root = root
        self.home = home
        host, port = process.url.removeprefix("http://").rstrip("/").split(":")
        self.host, self.port = host, int(port)
        self.client = httpx.Client(base_url=process.url, headers=AUTH, timeout=60)

    def raw(
        self, method: str, target: str, body: bytes | None = None, token: str | None = TEST_TOKEN
    ) -> tuple[int, bytes]:
        """Send ``target`` byte for byte (no client-side normalisation)."""
        connection = http.client.HTTPConnection(self.host, self.port, timeout=30)
        headers = {"Host": f"localhost:{self.port}"}
        if token is not None:
            headers["Authorization"] = f"token {token}"
        if body is not None:
            headers["Content-Type"] = "application/json"
        try:
            connection.putrequest(method, target, skip_host=True, skip_accept_encoding=True)
            for name, value in headers.items():
                connection.putheader(name, value)
            if body is not None:
                connection.putheader("Content-Length", str(len(body)))
            connection.endheaders(body)
            response = connection.getresponse()
            return response.status, response.read()
        finally:
            connection.close()


@pytest.fixture(scope="module")
def wire(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Wire]:
    """One server for the module, with its own HOME so deletes land in a private trash."""
    base = tmp_path_factory.mktemp("wire")
    root, home, outside = base / "root", base / "home", base / "outside"
    for directory in (root, home, outside):
        directory.mkdir()
    (outside / "secret.txt").write_text(SECRET)
    os.symlink(outside, root / "escape")
    os.symlink(outside / "secret.txt", root / "escape.txt")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("HOME", str(home))
        patch.setenv("XDG_DATA_HOME", str(home / ".local" / "share"))
        process = ServerProcess(
            ["--profile", "contents", "--port", "0", "--root-dir", str(root)],
            log_path=base / "server.log",
        ).start()
    server = Wire(process, root, home)
    try:
        yield server
    finally:
        server.client.close()
        process.stop()


ENDPOINTS = [
    ("GET", "/api/contents", None),
    ("GET", "/api/contents/a.txt", None),
    ("POST", "/api/contents", b'{"type": "notebook"}'),
    ("PUT", "/api/contents/a.txt", b'{"type": "file", "format": "text", "content": "x"}'),
    ("PATCH", "/api/contents/a.txt", b'{"path": "b.txt"}'),
    ("DELETE", "/api/contents/a.txt", None),
    ("GET", "/api/contents/a.txt/checkpoints", None),
    ("POST", "/api/contents/a.txt/checkpoints", None),
    ("POST", "/api/contents/a.txt/checkpoints/checkpoint", None),
    ("DELETE", "/api/contents/a.txt/checkpoints/checkpoint", None),
    ("POST", "/api/contents/n.ipynb/trust", None),
    ("GET", "/api/notebooks/n.ipynb", None),
    ("GET", "/files/a.txt", None),
    ("HEAD", "/files/a.txt", None),
]


def test_every_endpoint_refuses_missing_and_wrong_tokens(wire: Wire) -> None:
    (wire.root / "a.txt").write_text("keep")
    for method, target, body in ENDPOINTS:
        for token in (None, "wrong-token"):
            status, data = wire.raw(method, target, body, token=token)
            assert status == 403, (method, target, token)
            if method != "HEAD":
                assert json.loads(data) == DENIED
    assert (wire.root / "a.txt").read_text() == "keep"
    assert not (wire.root / "Untitled.ipynb").exists()
    (wire.root / "a.txt").unlink()


BAD_BODIES = [
    ("POST", "/api/contents", b"{", 400, "request body is not valid JSON: "),
    ("POST", "/api/contents", b'"text"', 400, "request body must be a JSON object"),
    ("POST", "/api/contents", b'{"type": []}', 400, "type: Input should be a valid string"),
    ("POST", "/api/contents", b'{"copy_from": 1}', 400, "copy_from: Input should be a valid"),
    ("PUT", "/api/contents/w.txt", b'{"type": "file",', 400, "request body is not valid JSON"),
    ("PUT", "/api/contents/w.txt", b"[]", 400, "request body must be a JSON object"),
    ("PUT", "/api/contents/w.txt", b'{"content": "x"}', 400, "No file type provided"),
    ("PUT", "/api/contents/w.txt", b'{"type": "file"}', 400, "No file content provided"),
    ("PUT", "/api/contents/w.txt", b'{"type": "file", "content": "x"}', 400, "Must specify"),
    (
        "PUT",
        "/api/contents/w.txt",
        b'{"type": "file", "format": "base64", "content": "***"}',
        400,
        "content of 'w.txt' is not valid base64: ",
    ),
    (
        "PUT",
        "/api/contents/w.txt",
        b'{"type": "file", "format": "text", "content": {"a": 1}}',
        400,
        "content of 'w.txt' must be a string for format 'text'",
    ),
    (
        "PUT",
        "/api/contents/w.txt",
        b'{"type": "file", "format": "text", "content": "x", "chunk": true}',
        400,
        "chunk: Input should be a valid integer",
    ),
    (
        "PUT",
        "/api/contents/w.ipynb",
        b'{"type": "notebook", "content": {"nbformat": 4}}',
        400,
        "notebook 'w.ipynb' failed validation: ",
    ),
    ("PATCH", "/api/contents/w.txt", b"", 400, "JSON body missing"),
    ("PATCH", "/api/contents/w.txt", b"{}", 400, "path: Field required"),
    ("PATCH", "/api/contents/w.txt", b'{"path": null}', 400, "path: Input should be a valid"),
    ("PATCH", "/api/contents/w.txt", b"{oops}", 400, "request body is not valid JSON"),
]


@pytest.mark.parametrize(("method", "target", "body", "status", "message"), BAD_BODIES)
def test_bad_bodies_get_a_clear_400(
    wire: Wire, method: str, target: str, body: bytes, status: int, message: str
) -> None:
    (wire.root / "w.txt").write_text("keep")
    got, data = wire.raw(method, target, body)
    assert got == status
    error = json.loads(data)
    assert error["reason"] == ("bad format" if message == "Must specify" else "Bad Request")
    assert error["message"].startswith(message), error
    assert (wire.root / "w.txt").read_text() == "keep"
    assert not (wire.root / "w.ipynb").exists()


TRAVERSAL_TARGETS = [
    "../outside/secret.txt",
    "../../../../../../etc/passwd",
    "sub/../../outside/secret.txt",
    "%2e%2e/outside/secret.txt",
    "%2E%2E%2Foutside%2Fsecret.txt",
    "..%2f..%2f..%2fetc%2fpasswd",
    "%252e%252e/outside/secret.txt",
    "%252e%252e%252f%252e%252e%252fetc%252fpasswd",
    "..\\outside\\secret.txt",
    "..%5coutside%5csecret.txt",
    "secret.txt%00",
    "%00/../outside",
    "escape/secret.txt",
    "escape.txt",
    "....//....//outside/secret.txt",
    "%2F..%2F..%2Fetc%2Fpasswd",
]


@pytest.mark.parametrize("target", TRAVERSAL_TARGETS)
def test_traversal_set_over_a_real_socket(wire: Wire, target: str) -> None:
    (wire.root / "sub").mkdir(exist_ok=True)
    (wire.root / "ok.txt").write_text("ok")
    before = sorted(os.listdir(wire.root))
    save = b'{"type": "file", "format": "text", "content": "pwned"}'
    requests = [
        ("GET", f"/api/contents/{target}", None),
        ("GET", f"/api/contents/{target}?limit=5", None),
        ("GET", f"/files/{target}", None),
        ("GET", f"/files/{target}?download=1", None),
        ("PUT", f"/api/contents/{target}", save),
        ("POST", f"/api/contents/{target}", b'{"type": "file"}'),
        ("PATCH", f"/api/contents/{target}", b'{"path": "moved.txt"}'),
        ("DELETE", f"/api/contents/{target}", None),
        ("POST", f"/api/contents/{target}/checkpoints", None),
        ("GET", f"/api/notebooks/{target}", None),
    ]
    for method, url, body in requests:
        status, data = wire.raw(method, url, body)
        where = f"{method} {url}"
        if status in (302, 307):  # /api/notebooks redirects; the target is checked there
            continue
        assert status in (400, 403, 404), (where, status, data[:200])
        error = json.loads(data)
        assert set(error) == {"message", "reason"}, where
        assert SECRET.encode() not in data, where
        assert b"root:" not in data, where
        assert str(wire.root.parent).encode() not in data, where
    assert sorted(os.listdir(wire.root)) == before
    assert (wire.root.parent / "outside" / "secret.txt").read_text() == SECRET


def test_traversal_statuses_are_exact(wire: Wire) -> None:
    cases = [
        ("/api/contents/../outside/secret.txt", 400, "bad path"),
        ("/api/contents/%2e%2e/outside", 400, "bad path"),
        ("/api/contents/%252e%252e/outside", 400, "bad path"),
        ("/api/contents/a\\b", 400, "bad path"),
        ("/api/contents/a%00b", 400, "bad path"),
        ("/api/contents/escape.txt", 403, "Forbidden"),
        ("/files/escape/secret.txt", 403, "Forbidden"),
        ("/api/contents//etc/passwd", 404, "Not Found"),
    ]
    for target, status, reason in cases:
        got, data = wire.raw("GET", target)
        assert (got, json.loads(data)["reason"]) == (status, reason), target


def test_a_checkpoint_directory_linked_outside_is_refused_over_the_wire(wire: Wire) -> None:
    outside = wire.root.parent / "outside-checkpoints"
    outside.mkdir()
    (outside / "a-checkpoint.txt").write_text(SECRET)
    (wire.root / "cpw").mkdir()
    (wire.root / "cpw" / "a.txt").write_text("inside")
    os.symlink(outside, wire.root / "cpw" / ".ipynb_checkpoints")
    for method, url in [
        ("GET", "/api/contents/cpw/a.txt/checkpoints"),
        ("POST", "/api/contents/cpw/a.txt/checkpoints"),
        ("POST", "/api/contents/cpw/a.txt/checkpoints/checkpoint"),
        ("DELETE", "/api/contents/cpw/a.txt/checkpoints/checkpoint"),
    ]:
        status, data = wire.raw(method, url)
        assert status == 403, (method, url, status, data)
        assert json.loads(data) == {
            "message": "the checkpoint directory of 'cpw/a.txt' leads outside the root "
            "directory through a link",
            "reason": "Forbidden",
        }
    assert (wire.root / "cpw" / "a.txt").read_text() == "inside"
    assert os.listdir(outside) == ["a-checkpoint.txt"]
    assert (outside / "a-checkpoint.txt").read_text() == SECRET


def test_large_download_streams_the_version_it_started_with(wire: Wire) -> None:
    old = os.urandom(24 * 1024 * 1024)
    (wire.root / "big.bin").write_bytes(old)
    received = bytearray()
    with wire.client.stream("GET", "files/big.bin") as response:
        assert response.headers["content-length"] == str(len(old))
        chunks = response.iter_raw(256 * 1024)
        received += next(chunks)
        new = base64.b64encode(b"replaced").decode()
        saved = wire.client.put(
            "api/contents/big.bin", json={"type": "file", "format": "base64", "content": new}
        )
        assert saved.status_code == 200
        for chunk in chunks:
            received += chunk
    assert bytes(received) == old
    assert (wire.root / "big.bin").read_bytes() == b"replaced"
    ranged = wire.client.get("files/big.bin", headers={"Range": "bytes=2-4"})
    assert (ranged.status_code, ranged.content) == (206, b"pla")
    (wire.root / "big.bin").unlink()


def _peak_rss(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) * 1024
    raise AssertionError("no VmHWM")


def test_chunked_upload_of_a_large_file_keeps_server_memory_flat(wire: Wire) -> None:
    chunk_size = 1024 * 1024
    chunks = 96
    digest = hashlib.sha256()
    warmup = os.urandom(chunk_size)
    body = {"type": "file", "format": "base64", "content": base64.b64encode(warmup).decode()}
    for number in (1, -1):  # let the server reach its steady state first
        assert wire.client.put("api/contents/warm.bin", json=body | {"chunk": number}).is_success
    before = _peak_rss(wire.process.pid)
    for index in range(chunks):
        block = (index.to_bytes(4, "big") * (chunk_size // 4))[:chunk_size]
        digest.update(block)
        number = -1 if index == chunks - 1 else index + 1
        response = wire.client.put(
            "api/contents/large.bin",
            json={
                "type": "file",
                "format": "base64",
                "chunk": number,
                "content": base64.b64encode(block).decode(),
            },
        )
        assert response.status_code == (201 if number == -1 else 200), response.text
        if number != -1:
            assert not (wire.root / "large.bin").exists()
    growth = _peak_rss(wire.process.pid) - before
    assert growth < 48 * 1024 * 1024, f"server peak memory grew by {growth / 2**20:.0f} MiB"
    with (wire.root / "large.bin").open("rb") as handle:
        assert hashlib.file_digest(handle, "sha256").hexdigest() == digest.hexdigest()
    assert response.json()["size"] == chunks * chunk_size
    for name in ("large.bin", "warm.bin"):
        (wire.root / name).unlink()


def test_deletes_go_to_the_trash(wire: Wire) -> None:
    (wire.root / "gone.txt").write_text("recover me")
    (wire.root / "full" / "deep").mkdir(parents=True)
    (wire.root / "full" / "deep" / "x.txt").write_text("x")
    assert wire.client.delete("api/contents/gone.txt").status_code == 204
    assert wire.client.delete("api/contents/full").status_code == 204
    trash = wire.home / ".local" / "share" / "Trash"
    assert (trash / "files" / "gone.txt").read_text() == "recover me"
    assert (trash / "files" / "full" / "deep" / "x.txt").read_text() == "x"
    assert (trash / "info" / "gone.txt.trashinfo").exists()
    assert not (wire.root / "gone.txt").exists()
    assert not (wire.root / "full").exists()


def test_sixteen_writers_and_readers_over_the_wire(wire: Wire) -> None:
    def notebook(source: str) -> dict[str, Any]:
        cell: dict[str, Any] = {
            "cell_type": "code",
            "id": "c1",
            "source": source,
            "metadata": {},
            "outputs": [],
            "execution_count": None,
        }
        return {"cells": [cell], "metadata": {}, "nbformat": 4, "nbformat_minor": 5}

    sources = {f"writer {w} round {r} " * 200 for w in range(16) for r in range(3)}
    sources.add("start")
    (wire.root / "shared.ipynb").write_text(json.dumps(notebook("start")))
    problems: list[str] = []
    lock = threading.Lock()

    def writer(index: int) -> None:
        with httpx.Client(base_url=wire.process.url, headers=AUTH, timeout=60) as client:
            for round_ in range(3):
                content = notebook(f"writer {index} round {round_} " * 200)
                response = client.put(
                    "api/contents/shared.ipynb", json={"type": "notebook", "content": content}
                )
                if response.status_code != 200:
                    with lock:
                        problems.append(f"writer {index}: {response.status_code}")

    def reader(index: int) -> None:
        with httpx.Client(base_url=wire.process.url, headers=AUTH, timeout=60) as client:
            for _ in range(5):
                response = client.get("api/contents/shared.ipynb")
                source = (
                    response.json()["content"]["cells"][0]["source"]
                    if response.status_code == 200
                    else None
                )
                if source not in sources:
                    with lock:
                        problems.append(f"reader {index}: {response.status_code}")

    with ThreadPoolExecutor(32) as pool:
        futures = [pool.submit(writer, i) for i in range(16)]
        futures += [pool.submit(reader, i) for i in range(16)]
        for future in futures:
            future.result()
    assert problems == []
    final = json.loads((wire.root / "shared.ipynb").read_text())
    assert "".join(final["cells"][0]["source"]) in sources
    assert not [name for name in os.listdir(wire.root) if name.startswith(".~")]
    (wire.root / "shared.ipynb").unlink()


def test_files_refuse_cookie_reads_from_other_sites_over_the_wire(wire: Wire) -> None:
    (wire.root / "include.js").write_text("var secret = 1;")
    browser = httpx.Client(base_url=wire.process.url, timeout=30)
    with browser:
        login = browser.get("lab", params={"token": TEST_TOKEN}, headers={"Accept": "text/html"})
        assert login.status_code == 302
        xsrf = browser.cookies["_xsrf"]
        page = f"http://127.0.0.1:{wire.port}/lab/tree/include.js"
        for referer in (None, "http://evil.example/steal.html", "http://127.0.0.1:1/lab"):
            headers = {"Referer": referer} if referer else {}
            refused = browser.get("files/include.js", headers=headers)
            assert refused.status_code == 403, referer
            assert "Blocking" in refused.json()["message"]
        # What JupyterLab sends: its own page as Referer, or ?_xsrf= on links it opens.
        assert browser.get("files/include.js", headers={"Referer": page}).text == "var secret = 1;"
        assert browser.get("files/include.js", params={"_xsrf": xsrf}).status_code == 200
        refused = browser.get("files/include.js", params={"_xsrf": xsrf + "x"})
        assert refused.status_code == 403
    # A token is proof enough, from anywhere.
    foreign = wire.client.get("files/include.js", headers={"Referer": "http://evil.example/"})
    assert foreign.status_code == 200


def test_view_page_frames_files_a_browser_may_load(wire: Wire) -> None:
    (wire.root / "page.html").write_text("<p>framed</p>")
    browser = httpx.Client(base_url=wire.process.url, timeout=30)
    with browser:
        login = browser.get("view/page.html", params={"token": TEST_TOKEN},
                            headers={"Accept": "text/html"})  # fmt: skip
        assert login.status_code == 302
        view = browser.get("view/page.html", headers={"Accept": "text/html"})
        assert view.status_code == 200
        assert 'sandbox="allow-scripts" src="/files/page.html"' in view.text
        # The iframe's request carries the view page as its Referer.
        framed = browser.get("files/page.html", headers={"Referer": str(view.url)})
        assert (framed.status_code, framed.text) == (200, "<p>framed</p>")
        assert "sandbox allow-scripts" in framed.headers["content-security-policy"]
