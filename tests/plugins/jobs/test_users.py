"""In multi-user mode jobs belong to whoever submitted them: others get 404, admins see all."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest

from junction.testing import app_client

pytestmark = pytest.mark.anyio


async def _token(admin: httpx.AsyncClient, name: str) -> dict[str, str]:
    created = await admin.post("/api/users", json={"name": name})
    assert created.status_code == 201, created.text
    token = (await admin.post(f"/api/users/{name}/tokens")).json()["token"]
    return {"Authorization": f"token {token}"}


async def test_users_see_only_their_own_jobs(tmp_path: Path) -> None:
    (tmp_path / "home" / "ana" / "shared").mkdir(parents=True)
    (tmp_path / "home" / "ana" / "shared" / "a.txt").write_text("a")
    async with app_client(root_dir=tmp_path, enable=["users", "jobs"]) as admin:
        ana = await _token(admin, "ana")
        bob = await _token(admin, "bob")
        created = await admin.post(
            "/api/jobs", headers=ana, json={"kind": "zip", "path": "home/ana/shared"}
        )
        assert created.status_code == 202, created.text
        job_id = created.json()["id"]
        assert [j["id"] for j in (await admin.get("/api/jobs", headers=ana)).json()] == [job_id]
        assert (await admin.get("/api/jobs", headers=bob)).json() == []
        for method, suffix in [("GET", ""), ("DELETE", ""), ("GET", "/events"), ("GET", "/result")]:
            response = await admin.request(method, f"/api/jobs/{job_id}{suffix}", headers=bob)
            assert response.status_code == 404, (method, suffix)
        assert [j["id"] for j in (await admin.get("/api/jobs")).json()] == [job_id]
        assert (await admin.get(f"/api/jobs/{job_id}")).status_code == 200
