"""Kernels and sessions belong to whoever started them: others get 404, admins see all.

Real kernels on a real uvicorn server, as a browser or a client would meet them.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import websockets
from websockets.exceptions import InvalidStatus

from junction.plugins.users.service import USERS
from junction.testing import TEST_TOKEN, serve_in_thread, user_headers

pytestmark = pytest.mark.anyio


@pytest.fixture
def server(tmp_path: Path) -> Iterator[tuple[str, object]]:
    with serve_in_thread(
        root_dir=tmp_path,
        enable=["kernelspecs", "kernels", "sessions", "users"],
        database_url=f"sqlite+aiosqlite:///{tmp_path / 'junction.db'}",
    ) as (url, app):
        yield url, app


async def test_users_see_only_their_own_kernels_and_sessions(
    server: tuple[str, object], tmp_path: Path
) -> None:
    url, app = server
    assert app.state.services.get(USERS) is not None  # type: ignore[attr-defined]
    admin_headers = {"Authorization": f"token {TEST_TOKEN}"}
    async with httpx.AsyncClient(base_url=url, headers=admin_headers, timeout=60) as admin:
        ana = await user_headers(admin, "ana")
        bob = await user_headers(admin, "bob")
        started = await admin.post("/api/kernels", headers=ana, json={})
        assert started.status_code == 201, started.text
        kernel = started.json()["id"]
        session = await admin.post(
            "/api/sessions",
            headers=ana,
            json={"path": "home/ana/a.ipynb", "type": "notebook", "kernel": {"id": kernel}},
        )
        assert session.status_code == 201, session.text
        session_id = session.json()["id"]

        # Her session moves only to paths she reaches.
        moved = await admin.patch(
            f"/api/sessions/{session_id}", headers=ana, json={"path": "home/bob/b.ipynb"}
        )
        assert moved.status_code == 404, moved.text
        moved = await admin.patch(
            f"/api/sessions/{session_id}", headers=ana, json={"path": "home/ana/c.ipynb"}
        )
        assert moved.status_code == 200, moved.text
        assert moved.json()["path"] == "home/ana/c.ipynb"

        # Ana sees hers.
        assert [k["id"] for k in (await admin.get("/api/kernels", headers=ana)).json()] == [kernel]
        assert (await admin.get(f"/api/sessions/{session_id}", headers=ana)).status_code == 200

        # Bob sees nothing, and every id of Ana's looks missing.
        assert (await admin.get("/api/kernels", headers=bob)).json() == []
        assert (await admin.get("/api/sessions", headers=bob)).json() == []
        for method, path in [
            ("GET", f"/api/kernels/{kernel}"),
            ("POST", f"/api/kernels/{kernel}/interrupt"),
            ("POST", f"/api/kernels/{kernel}/restart"),
            ("DELETE", f"/api/kernels/{kernel}"),
            ("GET", f"/api/sessions/{session_id}"),
            ("PATCH", f"/api/sessions/{session_id}"),
            ("DELETE", f"/api/sessions/{session_id}"),
        ]:
            response = await admin.request(method, path, headers=bob, json={"name": "x"})
            assert response.status_code == 404, (method, path, response.text)
        taken = await admin.post(
            "/api/sessions",
            headers=bob,
            json={"path": "home/bob/b.ipynb", "type": "notebook", "kernel": {"id": kernel}},
        )
        assert taken.status_code == 404
        ws_url = url.replace("http", "ws", 1) + f"api/kernels/{kernel}/channels"
        with pytest.raises(InvalidStatus) as refused:
            async with websockets.connect(ws_url, additional_headers=bob):
                pass
        assert refused.value.response.status_code == 404
        async with websockets.connect(ws_url, additional_headers=ana):
            pass

        # The administrator sees and stops everyone's.
        listed = (await admin.get("/api/kernels")).json()
        assert kernel in [k["id"] for k in listed]
        assert len((await admin.get("/api/sessions")).json()) == 1
        assert (await admin.delete(f"/api/kernels/{kernel}")).status_code == 204
        assert (await admin.get("/api/kernels", headers=ana)).json() == []


async def test_a_session_read_back_without_its_owner_belongs_to_its_kernels_owner(
    server: tuple[str, object],
) -> None:
    """After a restart (or on another server) only the database knows a session: its owner is
    the owner of its kernel, which the kernels plugin learns from the kernel's record."""
    from junction.services import AUTH

    url, app = server
    auth = app.state.services.get(AUTH)  # type: ignore[attr-defined]
    admin_headers = {"Authorization": f"token {TEST_TOKEN}"}
    async with httpx.AsyncClient(base_url=url, headers=admin_headers, timeout=60) as admin:
        ana = await user_headers(admin, "ana")
        bob = await user_headers(admin, "bob")
        session = await admin.post(
            "/api/sessions",
            headers=ana,
            json={"path": "home/ana/a.ipynb", "type": "notebook", "kernel": {"name": "python3"}},
        )
        assert session.status_code == 201, session.text
        session_id = session.json()["id"]
        auth.forget_owner("sessions", session_id)  # what a new server knows of it

        assert (await admin.get(f"/api/sessions/{session_id}", headers=bob)).status_code == 404
        auth.forget_owner("sessions", session_id)
        assert (await admin.get("/api/sessions", headers=bob)).json() == []
        auth.forget_owner("sessions", session_id)
        listed = (await admin.get("/api/sessions", headers=ana)).json()
        assert [s["id"] for s in listed] == [session_id]
        auth.forget_owner("sessions", session_id)
        assert (await admin.get(f"/api/sessions/{session_id}", headers=ana)).status_code == 200
        deleted = await admin.delete(f"/api/sessions/{session_id}", headers=ana)
        assert deleted.status_code == 204, deleted.text
