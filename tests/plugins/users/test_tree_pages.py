"""Notebook 7's ``/tree`` and ``/notebooks`` pages in multi-user mode: another user's files
look missing, whatever lies there, and the folders above one's home open as folders.

In process, on SQLite, with the real Notebook 7 pages.
"""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest

from junction.testing import app_client, user_headers

pytestmark = pytest.mark.anyio

HTML = {"Accept": "text/html"}


async def _token(admin: httpx.AsyncClient, name: str) -> dict[str, str]:
    return {**await user_headers(admin, name), **HTML}


async def test_tree_pages_tell_a_user_nothing_of_another_users_files(tmp_path: Path) -> None:
    root = tmp_path / "root"
    root.mkdir()
    async with app_client(
        enable=["users", "contents", "frontend", "lab"],
        root_dir=root,
        database_url=f"sqlite+aiosqlite:///{tmp_path / 'junction.db'}",
    ) as admin:
        ana = await _token(admin, "ana")
        bob = await _token(admin, "bob")
        for who in (ana, bob):  # first use makes the home
            assert (await admin.get("/api/contents/home", headers=who)).status_code == 200
        bob_home = root / "home" / "bob"
        (bob_home / "dir").mkdir()
        (bob_home / "secret.txt").write_text("BOB")
        (bob_home / "b.ipynb").write_text("{}")
        (root / "home" / "ana" / "a.ipynb").write_text("{}")

        for path in ("dir", "secret.txt", "b.ipynb", "nothing", "nothing.ipynb"):
            response = await admin.get(f"/tree/home/bob/{path}", headers=ana)
            assert response.status_code == 404, (path, response.status_code)
            notebook = await admin.get(f"/notebooks/home/bob/{path}", headers=ana)
            assert notebook.status_code == 200, (path, notebook.status_code)  # no redirect
        for path in ("", "home", "home/ana"):  # her home and the folders above it
            response = await admin.get(f"/tree/{path}", headers=ana)
            assert response.status_code == 200, (path, response.text)
        opened = await admin.get("/tree/home/ana/a.ipynb", headers=ana)
        assert opened.status_code == 302
        assert opened.headers["location"].endswith("/notebooks/home/ana/a.ipynb")
        # Bob still sees his own.
        assert (await admin.get("/tree/home/bob/dir", headers=bob)).status_code == 200
        redirected = await admin.get("/tree/home/bob/secret.txt", headers=bob)
        assert redirected.status_code == 302
        assert redirected.headers["location"].endswith("/files/home/bob/secret.txt")
