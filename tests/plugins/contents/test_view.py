"""``/view/{path}``: a page showing a file in a sandboxed iframe of ``/files``."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from .conftest import contents_client

pytestmark = pytest.mark.anyio


async def test_view_frames_the_file_in_a_sandbox(client: Any, root: Path) -> None:
    (root / "docs").mkdir()
    (root / "docs" / "report <1>.html").write_text("<h1>hi</h1>")
    response = await client.get("/view/docs/report%20%3C1%3E.html")
    assert response.status_code == 200
    assert response.headers["content-type"] == "text/html; charset=utf-8"
    page = response.text
    assert "<title>report &lt;1&gt;.html</title>" in page
    assert (
        '<iframe id="iframe" sandbox="allow-scripts" src="/files/docs/report%20%3C1%3E.html">'
        in page
    )


async def test_view_uses_the_base_url(root: Path) -> None:
    (root / "a.html").write_text("x")
    async with contents_client(root, base_url="/user/ana/") as client:
        response = await client.get("/user/ana/view/a.html")
    assert response.status_code == 200
    assert 'src="/user/ana/files/a.html"' in response.text


@pytest.mark.parametrize("path", ["missing.html", "folder", "", ".hidden.html"])
async def test_view_is_404_unless_a_readable_file(client: Any, root: Path, path: str) -> None:
    (root / "folder").mkdir()
    (root / ".hidden.html").write_text("x")
    response = await client.get(f"/view/{path}")
    assert response.status_code == 404


async def test_view_sends_browsers_to_login(root: Path) -> None:
    (root / "a.html").write_text("x")
    async with contents_client(root, authenticated=False) as client:
        response = await client.get("/view/a.html", headers={"Accept": "text/html"})
    assert response.status_code == 302
    assert response.headers["location"] == "/login?next=%2Fview%2Fa.html"
