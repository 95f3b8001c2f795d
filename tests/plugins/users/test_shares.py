"""Shares are kept in ``users_shares``: they outlive a restart; only the owner, an
administrator or the user a share was made for can withdraw it. SQLite and PostgreSQL."""

from __future__ import annotations

from pathlib import Path

import pytest
from tests.plugins.users.conftest import MultiUser

from junction.testing import user_headers

pytestmark = pytest.mark.anyio


async def test_shares_outlive_a_restart_and_are_withdrawn_by_the_right_people(
    multiuser: MultiUser, tmp_path: Path
) -> None:
    (tmp_path / "home" / "ana" / "data").mkdir(parents=True)
    (tmp_path / "home" / "ana" / "data" / "d.txt").write_text("shared")
    (tmp_path / "datasets").mkdir()
    async with multiuser("contents", root_dir=tmp_path) as admin:
        ana = await user_headers(admin, "ana")
        bob = await user_headers(admin, "bob")
        await user_headers(admin, "cyd")
        mine = await admin.put(
            "/api/users/shares", headers=ana, json={"path": "home/ana/data", "user": "bob"}
        )
        assert mine.status_code == 200, mine.text
        # Only administrators share folders outside every home.
        outside = await admin.put(
            "/api/users/shares", headers=ana, json={"path": "datasets", "user": "bob"}
        )
        assert outside.status_code == 404
        public = await admin.put(
            "/api/users/shares", json={"path": "datasets", "group": "everyone", "access": "read"}
        )
        assert public.status_code == 200, public.text
    async with multiuser("contents", root_dir=tmp_path) as admin:
        cyd_token = (await admin.post("/api/users/cyd/tokens")).json()["token"]
        cyd = {"Authorization": f"token {cyd_token}"}
        bob_token = (await admin.post("/api/users/bob/tokens")).json()["token"]
        bob = {"Authorization": f"token {bob_token}"}
        got = await admin.get("/api/contents/home/ana/data/d.txt", headers=bob)
        assert got.status_code == 200, got.text
        share_id = mine.json()["id"]
        assert (await admin.delete(f"/api/users/shares/{share_id}", headers=cyd)).status_code == 404
        assert (await admin.delete(f"/api/users/shares/{share_id}", headers=bob)).status_code == 204
        assert (
            await admin.get("/api/contents/home/ana/data/d.txt", headers=bob)
        ).status_code == 404
        assert (await admin.delete(f"/api/users/shares/{share_id}")).status_code == 404
