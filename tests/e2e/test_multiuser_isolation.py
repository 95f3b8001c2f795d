"""Multi-user isolation over a real server: files, kernels, sessions, terminals and jobs of
one user look missing (404) to another; per-user limits answer 403.

A real uvicorn server on loopback with real kernels and PTYs, on SQLite and PostgreSQL.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import websockets
from websockets.exceptions import InvalidStatus

from junction.testing import TEST_TOKEN, serve_in_thread, user_headers

pytestmark = pytest.mark.anyio

ADMIN = {"Authorization": f"token {TEST_TOKEN}"}


@pytest.fixture
def server(tmp_path: Path, database_url: str) -> Iterator[tuple[str, Path]]:
    root = tmp_path / "root"
    root.mkdir()
    with serve_in_thread(
        root_dir=root,
        enable=["contents", "kernelspecs", "kernels", "sessions", "terminals", "jobs", "users"],
        database_url=database_url,
        plugin_settings={
            "users": {"max_terminals_per_user": 1, "max_kernels_per_user": 1},
            # Not the login shell: killing it mid-startup could leave its rc files' locks.
            "terminals": {"shell_command": ["/bin/sh"]},
        },
    ) as (url, _):
        yield url, root


async def _refused(url: str, headers: dict[str, str]) -> int:
    with pytest.raises(InvalidStatus) as refused:
        async with websockets.connect(url, additional_headers=headers):
            pass
    return refused.value.response.status_code


async def test_one_users_objects_look_missing_to_another(server: tuple[str, Path]) -> None:
    url, root = server
    ws = url.replace("http", "ws", 1)
    async with httpx.AsyncClient(base_url=url, headers=ADMIN, timeout=60) as admin:
        ana = await user_headers(admin, "ana")
        bob = await user_headers(admin, "bob")

        # Files: Ana's home is hers alone.
        saved = await admin.put(
            "/api/contents/home/ana/notes/n.txt",
            headers=ana,
            json={"type": "file", "format": "text", "content": "private"},
        )
        assert saved.status_code == 404  # the folder does not exist yet
        made = await admin.put(
            "/api/contents/home/ana/notes", headers=ana, json={"type": "directory"}
        )
        assert made.status_code == 201, made.text
        saved = await admin.put(
            "/api/contents/home/ana/notes/n.txt",
            headers=ana,
            json={"type": "file", "format": "text", "content": "private"},
        )
        assert saved.status_code == 201, saved.text
        for path in ("/api/contents/home/ana/notes/n.txt", "/files/home/ana/notes/n.txt"):
            assert (await admin.get(path, headers=bob)).status_code == 404
            assert (await admin.get(path, headers=ana)).status_code == 200

        # Kernels and sessions.
        session = await admin.post(
            "/api/sessions",
            headers=ana,
            json={
                "path": "home/ana/notes/a.ipynb",
                "type": "notebook",
                "kernel": {"name": "python3"},
            },
        )
        assert session.status_code == 201, session.text
        kernel = session.json()["kernel"]["id"]
        session_id = session.json()["id"]
        assert (await admin.get(f"/api/kernels/{kernel}", headers=bob)).status_code == 404
        assert (await admin.get(f"/api/sessions/{session_id}", headers=bob)).status_code == 404
        assert await _refused(f"{ws}api/kernels/{kernel}/channels", bob) == 404
        elsewhere = await admin.post(
            "/api/sessions",
            headers=bob,
            json={
                "path": "home/ana/notes/b.ipynb",
                "type": "notebook",
                "kernel": {"name": "python3"},
            },
        )
        assert elsewhere.status_code == 404
        cwd = await admin.post("/api/kernels", headers=bob, json={"path": "home/ana/notes/x.ipynb"})
        assert cwd.status_code == 404
        # Ana runs one kernel, her limit: a second is refused with 403.
        second = await admin.post("/api/kernels", headers=ana, json={})
        assert second.status_code == 403, second.text
        assert second.json()["reason"] == "UserLimitReached"

        # Terminals: Ana's shell starts in her home; Bob cannot see, use or stop it.
        term = await admin.post("/api/terminals", headers=ana, json={})
        assert term.status_code == 200, term.text
        name = term.json()["name"]
        assert (await admin.get("/api/terminals", headers=bob)).json() == []
        assert [t["name"] for t in (await admin.get("/api/terminals", headers=ana)).json()] == [
            name
        ]
        assert (await admin.get(f"/api/terminals/{name}", headers=bob)).status_code == 404
        assert (await admin.delete(f"/api/terminals/{name}", headers=bob)).status_code == 404
        assert await _refused(f"{ws}terminals/websocket/{name}", bob) == 404
        async with websockets.connect(
            f"{ws}terminals/websocket/{name}", additional_headers=ana
        ) as sock:
            await sock.send(json.dumps(["stdin", "pwd\r"]))
            seen = ""
            while str(root / "home" / "ana") not in seen:
                message = json.loads(await sock.recv())
                if message[0] == "stdout":
                    seen += message[1]
        assert (await admin.post("/api/terminals", headers=ana, json={})).status_code == 403
        bobs = await admin.post("/api/terminals", headers=bob, json={"cwd": "home/ana/notes"})
        assert bobs.status_code == 404

        # Jobs: Bob cannot archive Ana's folder, nor the folders above the homes.
        job = await admin.post(
            "/api/jobs", headers=bob, json={"kind": "zip", "path": "home/ana/notes"}
        )
        assert job.status_code == 404, job.text
        climbing = await admin.post(
            "/api/jobs", headers=bob, json={"kind": "zip", "path": "home/bob/../ana/notes"}
        )
        assert climbing.status_code == 404, climbing.text
        above = await admin.post("/api/jobs", headers=bob, json={"kind": "zip", "path": "home"})
        assert above.status_code == 403, above.text
        mine = await admin.post(
            "/api/jobs", headers=ana, json={"kind": "zip", "path": "home/ana/notes"}
        )
        assert mine.status_code == 202, mine.text  # jobs answer 202 Accepted

        # The administrator sees and stops everyone's.
        assert name in [t["name"] for t in (await admin.get("/api/terminals")).json()]
        assert (await admin.delete(f"/api/terminals/{name}")).status_code == 204
        assert (await admin.delete(f"/api/kernels/{kernel}")).status_code == 204
