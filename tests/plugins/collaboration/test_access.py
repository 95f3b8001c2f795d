"""Multi-user mode: shared documents follow the same ownership and path rules as the
Contents and Kernels APIs. Another user's file or kernel looks missing (404); a notebook
shared read-only cannot be run (403).

In process, on SQLite and on PostgreSQL (the users plugin's ``multiuser`` fixture), with
real ipykernel kernels.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any
from urllib.parse import quote

import httpx
import pytest
from tests.plugins.users.conftest import MultiUser, multiuser

from junction.testing import user_headers

__all__ = ["multiuser"]

pytestmark = pytest.mark.anyio

NOTEBOOK = {
    "cells": [
        {
            "cell_type": "code",
            "id": "c0",
            "source": "print(1)",
            "metadata": {},
            "outputs": [],
            "execution_count": None,
        }
    ],
    "metadata": {},
    "nbformat": 4,
    "nbformat_minor": 5,
}


async def _session(client: httpx.AsyncClient, path: str, user: dict[str, str]) -> httpx.Response:
    return await client.put(
        f"/api/collaboration/session/{quote(path, safe='')}",
        headers=user,
        json={"format": "json", "type": "notebook"},
    )


async def _execute(
    client: httpx.AsyncClient, kernel_id: str, room: str, user: dict[str, str]
) -> httpx.Response:
    return await client.post(
        f"/api/kernels/{kernel_id}/execute",
        headers=user,
        json={"cell_id": "c0", "document_id": room},
    )


async def test_rooms_and_execution_follow_ownership(multiuser: MultiUser, tmp_path: Path) -> None:
    plugins = ("contents", "kernelspecs", "kernels", "collaboration")
    async with multiuser(*plugins, root_dir=tmp_path) as admin:
        ana = await user_headers(admin, "ana")
        bob = await user_headers(admin, "bob")
        body: dict[str, Any] = {"type": "notebook", "format": "json", "content": NOTEBOOK}
        folder = await admin.put(
            "/api/contents/home/ana/data", headers=ana, json={"type": "directory"}
        )
        assert folder.status_code == 201, folder.text
        for path in ("home/ana/nb.ipynb", "home/ana/data/shared.ipynb"):
            saved = await admin.put(f"/api/contents/{path}", headers=ana, json=body)
            assert saved.status_code == 201, saved.text
        opened = await _session(admin, "home/ana/nb.ipynb", ana)
        assert opened.status_code == 201, opened.text
        room = f"json:notebook:{opened.json()['fileId']}"

        # Bob cannot open Ana's notebook: it looks missing, as through /api/contents.
        refused = await _session(admin, "home/ana/nb.ipynb", bob)
        assert refused.status_code == 404, refused.text
        assert "fileId" not in refused.text

        ana_kernel = await admin.post("/api/kernels", headers=ana, json={"name": "python3"})
        assert ana_kernel.status_code == 201, ana_kernel.text
        bob_kernel = await admin.post("/api/kernels", headers=bob, json={"name": "python3"})
        assert bob_kernel.status_code == 201, bob_kernel.text

        # Another user's kernel looks missing, like every /api/kernels/{id} route.
        denied = await _execute(admin, ana_kernel.json()["id"], room, bob)
        assert denied.status_code == 404, denied.text
        assert denied.json()["reason"]
        # His own kernel on Ana's notebook: the notebook looks missing.
        denied = await _execute(admin, bob_kernel.json()["id"], room, bob)
        assert denied.status_code == 404, denied.text

        # Shared read-only with Bob: he may open it, not run its cells (it writes outputs).
        shared = await admin.put(
            "/api/users/shares", headers=ana, json={"path": "home/ana/data", "user": "bob"}
        )
        assert shared.status_code == 200, shared.text
        opened = await _session(admin, "home/ana/data/shared.ipynb", bob)
        assert opened.status_code == 201, opened.text
        shared_room = f"json:notebook:{opened.json()['fileId']}"
        read_only = await _execute(admin, bob_kernel.json()["id"], shared_room, bob)
        assert read_only.status_code == 403, read_only.text
        assert json.loads(read_only.text)["message"]

        # Ana runs her own cell on her own kernel.
        ran = await _execute(admin, ana_kernel.json()["id"], room, ana)
        assert ran.status_code == 202, ran.text
        for kernel in (ana_kernel, bob_kernel):
            await admin.delete(f"/api/kernels/{kernel.json()['id']}")
