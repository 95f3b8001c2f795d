"""A paged listing's ``total`` counts exactly what its pages list, in both orders.

Entries a listing never shows (links leading out of the root, broken links, links to a
FIFO, FIFOs, hidden names, ``hide_globs`` names, and in multi-user mode what the user may
not see) are not counted either, so ``total`` is the sum of the page lengths and tells
nothing of the entries left out.
"""

from __future__ import annotations

import os
from pathlib import Path

import httpx
import pytest

from .conftest import contents_client
from .test_review_fixes import _admin_root, _bob_beside_ana, _multiuser, _pages

pytestmark = pytest.mark.anyio

LIMITS = (1, 2, 3, 100)
PLAIN = ["a.txt", "b.ipynb", "inner-link", "sub"]
"""What a directory :func:`_populate` filled lists."""


def _populate(directory: Path, outside: Path) -> None:
    """Listed entries (``a.txt``, ``b.ipynb``, ``sub``, ``inner-link``) beside ones that never
    are: links out of the root (to a file, to a directory), a broken link, a link to a FIFO,
    a FIFO, a hidden file and a hidden link, a ``hide_globs`` name."""
    outside.mkdir(exist_ok=True)
    (outside / "secret.txt").write_text("outside")
    (directory / "a.txt").write_text("a")
    (directory / "b.ipynb").write_text("{}")
    (directory / "sub").mkdir()
    (directory / "inner-link").symlink_to(directory / "a.txt")
    (directory / "out-file").symlink_to(outside / "secret.txt")
    (directory / "out-dir").symlink_to(outside)
    (directory / "broken").symlink_to(directory / "missing")
    os.mkfifo(directory / "pipe")
    (directory / "pipe-link").symlink_to(directory / "pipe")
    (directory / ".hidden").write_text("h")
    (directory / ".hidden-link").symlink_to(directory / "a.txt")
    (directory / "module.pyc").write_bytes(b"")


async def _check_totals(
    client: httpx.AsyncClient, url: str, headers: dict[str, str], listed: list[str]
) -> None:
    """Every walk of ``url`` (both orders, several page sizes) lists ``listed`` and each of
    its pages gives as ``total`` the number of names listed over all pages (or None, by
    directory order, before the scan reached the end)."""
    for order in ("name", "directory"):
        for limit in LIMITS:
            names, responses = await _pages(client, url, headers, limit, order=order)
            assert sorted(names) == sorted(listed), (order, limit)
            lengths = [len(response.json()["content"]) for response in responses]
            totals = [response.json()["pagination"]["total"] for response in responses]
            assert sum(lengths) == len(listed)
            assert totals[-1] == len(listed), (order, limit, totals)
            expected = {len(listed)} if order == "name" else {None, len(listed)}
            assert set(totals) <= expected, (order, limit, totals)


async def test_total_counts_only_the_entries_the_pages_list(tmp_path: Path, fast: bool) -> None:
    root = tmp_path / "root"
    (root / "data").mkdir(parents=True)
    _populate(root / "data", tmp_path / "outside")
    async with contents_client(root) as client:
        plain = await client.get("/api/contents/data")
        listed = [entry["name"] for entry in plain.json()["content"]]
        assert listed == PLAIN
        await _check_totals(client, "/api/contents/data", {}, listed)


async def test_total_counts_only_what_each_user_is_listed(tmp_path: Path) -> None:
    root = _admin_root(tmp_path)
    _populate(root, tmp_path / "outside")
    async with _multiuser(root) as admin:
        bob = await _bob_beside_ana(admin)
        _populate(root / "home" / "bob", tmp_path / "outside")

        everything = await admin.get("/api/contents")
        listed = [entry["name"] for entry in everything.json()["content"]]
        assert listed == sorted([*PLAIN, "aa-board-minutes.txt", "home", "team", "zz-salaries.csv"])
        await _check_totals(admin, "/api/contents", {}, listed)

        await _check_totals(admin, "/api/contents", bob, ["home", "team"])
        home = await admin.get("/api/contents/home/bob", headers=bob)
        listed = [entry["name"] for entry in home.json()["content"]]
        assert listed == PLAIN
        await _check_totals(admin, "/api/contents/home/bob", bob, listed)
