"""/files: raw bytes, content types, downloads, the sandbox policy, ranges, HEAD."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from junction.plugins.contents.files import FILES_CSP
from junction.testing import TEST_TOKEN

from .conftest import contents_client

pytestmark = pytest.mark.anyio


@pytest.mark.parametrize(
    ("name", "data", "content_type"),
    [
        ("page.html", b"<script>alert(1)</script>", "text/html"),
        ("image.svg", b"<svg onload='alert(1)'/>", "image/svg+xml"),
        ("notes.txt", b"hello", "text/plain"),
        ("README", "plain words, caf\u00e9".encode(), "text/plain; charset=utf-8"),
        ("blob", bytes(range(256)), "application/octet-stream"),
        ("data.csv.gz", b"\x1f\x8b", "application/gzip"),
        ("a.ipynb", b"{}", "application/x-ipynb+json"),
    ],
)
async def test_files_serve_bytes_with_a_type_and_the_sandbox(
    client: Any, root: Path, name: str, data: bytes, content_type: str
) -> None:
    (root / name).write_bytes(data)
    response = await client.get(f"/files/{name}")
    assert response.status_code == 200
    assert response.content == data
    assert response.headers["content-type"] == content_type
    assert response.headers["content-security-policy"] == FILES_CSP
    assert "sandbox allow-scripts" in response.headers["content-security-policy"]
    assert response.headers["x-content-type-options"] == "nosniff"
    assert response.headers["content-length"] == str(len(data))
    assert response.headers["accept-ranges"] == "bytes"
    if name.endswith(".ipynb"):
        assert response.headers["content-disposition"] == 'attachment; filename="a.ipynb"'
    else:
        assert "content-disposition" not in response.headers


async def test_download_makes_an_attachment_with_an_encoded_name(client: Any, root: Path) -> None:
    (root / "plain.txt").write_text("x")
    (root / "résumé 1.txt").write_text("x")
    response = await client.get("/files/plain.txt?download=1")
    assert response.headers["content-disposition"] == 'attachment; filename="plain.txt"'
    response = await client.get("/files/r%C3%A9sum%C3%A9%201.txt", params={"download": "1"})
    assert response.headers["content-disposition"] == (
        "attachment; filename*=utf-8''r%C3%A9sum%C3%A9%201.txt"
    )


async def test_head_sends_headers_only(client: Any, root: Path) -> None:
    (root / "a.bin").write_bytes(b"12345")
    response = await client.head("/files/a.bin")
    assert response.status_code == 200
    assert response.content == b""
    assert response.headers["content-length"] == "5"
    assert response.headers["etag"]


@pytest.mark.parametrize(
    ("header", "status", "body", "content_range"),
    [
        ("bytes=2-4", 206, b"234", "bytes 2-4/10"),
        ("bytes=7-", 206, b"789", "bytes 7-9/10"),
        ("bytes=-3", 206, b"789", "bytes 7-9/10"),
        ("bytes=8-100", 206, b"89", "bytes 8-9/10"),
        ("bytes=10-", 416, b"", "bytes */10"),
        ("bytes=5-2", 416, b"", "bytes */10"),
        ("bytes=0-1,4-5", 200, b"0123456789", None),
        ("items=0-1", 200, b"0123456789", None),
    ],
)
async def test_single_byte_ranges(
    client: Any,
    root: Path,
    header: str,
    status: int,
    body: bytes,
    content_range: str | None,
) -> None:
    (root / "digits.txt").write_bytes(b"0123456789")
    response = await client.get("/files/digits.txt", headers={"Range": header})
    assert response.status_code == status
    assert response.content == body
    assert response.headers.get("content-range") == content_range
    assert response.headers["content-length"] == str(len(body))


async def test_conditional_requests(client: Any, root: Path) -> None:
    (root / "digits.txt").write_bytes(b"0123456789")
    first = await client.get("/files/digits.txt")
    etag = first.headers["etag"]
    response = await client.get("/files/digits.txt", headers={"If-None-Match": etag})
    assert (response.status_code, response.content) == (304, b"")
    stale = await client.get(
        "/files/digits.txt", headers={"Range": "bytes=0-1", "If-Range": '"old"'}
    )
    assert (stale.status_code, stale.content) == (200, b"0123456789")
    fresh = await client.get("/files/digits.txt", headers={"Range": "bytes=0-1", "If-Range": etag})
    assert (fresh.status_code, fresh.content) == (206, b"01")
    (root / "digits.txt").write_bytes(b"changed!!!")
    os.utime(root / "digits.txt", ns=(1, 1))
    changed = await client.get("/files/digits.txt", headers={"If-None-Match": etag})
    assert (changed.status_code, changed.content) == (200, b"changed!!!")


async def test_large_files_stream_whole(client: Any, root: Path) -> None:
    data = os.urandom(3 * 1024 * 1024 + 17)
    (root / "big.bin").write_bytes(data)
    response = await client.get("/files/big.bin")
    assert response.content == data


@pytest.mark.parametrize(
    ("path", "status", "message"),
    [
        ("missing.txt", 404, "file or directory 'missing.txt' does not exist"),
        (".secret", 404, "file or directory '.secret' does not exist"),
        ("folder", 400, "'folder' is a directory"),
        ("", 400, "'' is a directory"),
    ],
)
async def test_files_refusals(
    client: Any, root: Path, path: str, status: int, message: str
) -> None:
    (root / ".secret").write_text("s")
    (root / "folder").mkdir()
    response = await client.get(f"/files/{path}")
    assert response.status_code == status
    assert response.json()["message"] == message


async def test_special_files_are_refused_without_blocking(client: Any, root: Path) -> None:
    os.mkfifo(root / "pipe")  # opening a FIFO for reading would wait for a writer forever
    for method, url, body in (
        ("GET", "/files/pipe", None),
        ("GET", "/api/contents/pipe", None),
        ("POST", "/api/contents", {"copy_from": "pipe"}),
        ("POST", "/api/contents/pipe/checkpoints", None),
    ):
        response = await client.request(method, url, json=body)
        assert response.status_code == 400, url
        assert response.json()["reason"] == "bad type", url


@pytest.fixture
async def browser(root: Path) -> AsyncIterator[Any]:
    """A client logged in by cookie, as a browser is (no token on its requests)."""
    async with contents_client(root, authenticated=False) as client:
        exchanged = await client.get(
            "/", params={"token": TEST_TOKEN}, headers={"Accept": "text/html"}
        )
        assert exchanged.status_code == 302
        assert "_xsrf" in client.cookies
        yield client


@pytest.mark.parametrize("method", ["GET", "HEAD"])
@pytest.mark.parametrize(
    ("headers", "message"),
    [
        ({}, "Blocking request from unknown origin"),
        (
            {"Referer": "http://evil.example/page"},
            "Blocking Cross Origin request from http://evil.example/page.",
        ),
        (
            {"Referer": "http://localhost:9999/lab"},
            "Blocking Cross Origin request from http://localhost:9999/lab.",
        ),
        ({"X-XSRFToken": "forged.value"}, "Blocking request from unknown origin"),
    ],
)
async def test_files_refuse_cookie_reads_from_other_sites(
    browser: Any, root: Path, method: str, headers: dict[str, str], message: str
) -> None:
    (root / "secret.js").write_text("var secret = 42;")
    response = await browser.request(method, "/files/secret.js", headers=headers)
    assert response.status_code == 403
    if method == "GET":
        assert response.json() == {"message": message, "reason": "Forbidden"}


async def test_files_refuse_a_forged_xsrf_query(browser: Any, root: Path) -> None:
    (root / "secret.js").write_text("var secret = 42;")
    response = await browser.get("/files/secret.js", params={"_xsrf": "nonce.mac"})
    assert response.status_code == 403


async def test_files_serve_cookie_reads_from_our_pages(browser: Any, root: Path) -> None:
    (root / "secret.js").write_text("var secret = 42;")
    same_site = await browser.get(
        "/files/secret.js", headers={"Referer": "http://localhost:8888/lab/tree/x.ipynb"}
    )
    assert (same_site.status_code, same_site.text) == (200, "var secret = 42;")
    # JupyterLab's download links and "Open in New Browser Tab" carry ?_xsrf=.
    link = await browser.get("/files/secret.js", params={"_xsrf": browser.cookies["_xsrf"]})
    assert (link.status_code, link.text) == (200, "var secret = 42;")
    header = await browser.head(
        "/files/secret.js", headers={"X-XSRFToken": browser.cookies["_xsrf"]}
    )
    assert header.status_code == 200


async def test_files_serve_token_reads_from_anywhere(client: Any, root: Path) -> None:
    (root / "secret.js").write_text("var secret = 42;")
    response = await client.get("/files/secret.js", headers={"Referer": "http://evil.example/"})
    assert response.status_code == 200
