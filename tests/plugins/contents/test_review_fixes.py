"""Contents reads that once leaked or failed: paging above a user's home in multi-user mode,
``offset``/``length`` beyond 64 bits, notebooks without an ``nbformat``.

Each case runs through the fast twin and through the FastAPI route (twins off), which must
answer alike.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest

from junction.testing import app_client, user_headers

pytestmark = pytest.mark.anyio

HIDDEN = ("aa-board-minutes.txt", "zz-salaries.csv", "ana")
"""Names bob may not see: the administrator's files in the root and ana's home (he sees
``home`` and ``team``, a root folder shared with him)."""


@asynccontextmanager
async def _multiuser(root: Path) -> AsyncIterator[httpx.AsyncClient]:
    async with app_client(
        enable=["users", "contents"],
        root_dir=root,
        database_url=f"sqlite+aiosqlite:///{root.parent / 'junction.db'}",
        plugin_settings={"users": {}, "contents": {"delete_to_trash": False}},
    ) as admin:
        yield admin


def _admin_root(tmp_path: Path) -> Path:
    """A root holding the administrator's files (``HIDDEN``) and a folder ``team``."""
    root = tmp_path / "root"
    root.mkdir()
    for name in HIDDEN[:2]:
        (root / name).write_text("admin only")
    (root / "team").mkdir()
    return root


async def _bob_beside_ana(admin: httpx.AsyncClient) -> dict[str, str]:
    """Users ana (a file in her home) and bob (his home, and ``team`` shared with him);
    bob's headers."""
    ana = await user_headers(admin, "ana")
    bob = await user_headers(admin, "bob")
    made = await admin.put(
        "/api/contents/home/ana/a.txt",
        headers=ana,
        json={"type": "file", "format": "text", "content": "ana's"},
    )
    assert made.status_code == 201, made.text
    assert (await admin.get("/api/contents/home/bob", headers=bob)).status_code == 200
    shared = await admin.put("/api/users/shares", json={"path": "team", "user": "bob"})
    assert shared.status_code == 200, shared.text
    return bob


async def _pages(
    client: httpx.AsyncClient, url: str, headers: dict[str, str], limit: int, **query: str
) -> tuple[list[str], list[httpx.Response]]:
    """Every name of a paged listing, following ``next``, and the responses on the way;
    ``query`` goes on every request (``order="directory"``)."""
    names: list[str] = []
    responses: list[httpx.Response] = []
    after: str | None = None
    for _ in range(10):
        params: dict[str, Any] = {"limit": limit, **query}
        if after is not None:
            params["after"] = after
        response = await client.get(url, params=params, headers=headers)
        assert response.status_code == 200, response.text
        responses.append(response)
        model = response.json()
        names += [entry["name"] for entry in model["content"]]
        after = model["pagination"]["next"]
        if after is None:
            return names, responses
    raise AssertionError(f"paging {url} did not end: {names}")


def _leaks(response: httpx.Response) -> list[str]:
    seen = response.text + json.dumps(dict(response.headers))
    return [name for name in HIDDEN if name in seen]


async def test_paging_above_a_home_shows_only_what_the_listing_shows(
    tmp_path: Path, fast: bool
) -> None:
    async with _multiuser(_admin_root(tmp_path)) as admin:
        bob = await _bob_beside_ana(admin)

        for url, visible in [("/api/contents", ["home", "team"]), ("/api/contents/home", ["bob"])]:
            plain = await admin.get(url, headers=bob)
            assert [entry["name"] for entry in plain.json()["content"]] == visible
            for limit in (1, 2, 5):
                names, responses = await _pages(admin, url, bob, limit)
                assert names == visible, (url, limit)
                for response in responses:
                    assert response.json()["pagination"]["total"] == len(visible)
                    assert _leaks(response) == [], (url, limit, response.text)
            # a cursor naming a hidden entry pages on from there without naming anything else
            cursor = await admin.get(url, params={"limit": 1, "after": "a"}, headers=bob)
            assert [entry["name"] for entry in cursor.json()["content"]] == visible[:1]
            assert cursor.json()["pagination"]["next"] == (visible[0] if visible[1:] else None)
            assert [n for n in _leaks(cursor) if n != "a"] == []

        # the administrator still pages over everything
        names, _ = await _pages(admin, "/api/contents", {}, 1)
        assert names == ["aa-board-minutes.txt", "home", "team", "zz-salaries.csv"]


MAX = 2**63 - 1


@pytest.mark.parametrize(
    ("query", "message"),
    [
        ("offset=99999999999999999999999", "offset must be an integer from 0 to "),
        ("offset=18446744073709551616&length=1", "offset must be an integer from 0 to "),
        (f"offset={MAX + 1}", "offset must be an integer from 0 to "),
        (f"length={MAX + 1}", "length must be an integer from 0 to "),
        ("length=" + "9" * 5000, "length must be an integer from 0 to "),
    ],
)
async def test_offsets_and_lengths_beyond_64_bits_are_refused(
    tmp_path: Path, fast: bool, query: str, message: str
) -> None:
    (tmp_path / "a.txt").write_text("hello")
    async with app_client(enable=["contents"], root_dir=tmp_path) as client:
        response = await client.get(f"/api/contents/a.txt?{query}")
        assert response.status_code == 400, response.text
        assert response.json()["message"].startswith(message + str(MAX))
        assert len(response.text) < 300
        largest = await client.get(f"/api/contents/a.txt?offset={MAX}&length=1")
        assert largest.status_code == 200, largest.text


@pytest.mark.parametrize(
    ("body", "got"),
    [(b"{}", "None"), (b'{"nbformat": "4"}', "'4'"), (b'{"nbformat": true}', "True")],
)
async def test_a_notebook_without_an_nbformat_is_unreadable(
    tmp_path: Path, fast: bool, body: bytes, got: str
) -> None:
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "n.ipynb").write_bytes(body)
    async with app_client(enable=["contents"], root_dir=tmp_path) as client:
        response = await client.get("/api/contents/sub/n.ipynb")
        assert response.status_code == 400, response.text
        assert response.json()["message"] == (
            f"unreadable notebook 'sub/n.ipynb': no nbformat version (got {got})"
        )
        trust = await client.post("/api/contents/sub/n.ipynb/trust")
        assert trust.status_code == 400, trust.text
        as_file = await client.get("/api/contents/sub/n.ipynb?type=file&format=text")
        assert as_file.status_code == 200
        assert as_file.json()["content"] == body.decode()


async def test_a_notebook_without_metadata_reads_as_untrusted(tmp_path: Path, fast: bool) -> None:
    cells = [{"cell_type": "code", "source": "1", "outputs": []}]
    (tmp_path / "n.ipynb").write_text(json.dumps({"nbformat": 4, "cells": cells}))
    async with app_client(enable=["contents"], root_dir=tmp_path) as client:
        response = await client.get("/api/contents/n.ipynb")
        assert response.status_code == 200, response.text
        assert response.json()["content"]["cells"][0]["metadata"] == {"trusted": False}
