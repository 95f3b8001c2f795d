"""In multi-user mode jobs belong to whoever submitted them: others get 404, admins see all."""

from __future__ import annotations

from pathlib import Path

import pytest

from junction.testing import app_client, user_headers

pytestmark = pytest.mark.anyio


async def test_users_see_only_their_own_jobs(tmp_path: Path) -> None:
    (tmp_path / "home" / "ana" / "shared").mkdir(parents=True)
    (tmp_path / "home" / "ana" / "shared" / "a.txt").write_text("a")
    async with app_client(root_dir=tmp_path, enable=["users", "jobs"]) as admin:
        ana = await user_headers(admin, "ana")
        bob = await user_headers(admin, "bob")
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


async def test_notebook_jobs_stay_in_the_users_home(tmp_path: Path) -> None:
    import nbformat

    notebook = nbformat.v4.new_notebook()  # type: ignore[no-untyped-call]  # untyped library
    notebook.cells.append(nbformat.v4.new_code_cell("1 + 1"))  # type: ignore[no-untyped-call]
    for name in ("ana", "bob"):
        (tmp_path / "home" / name).mkdir(parents=True)
    nbformat.write(notebook, tmp_path / "home" / "ana" / "nb.ipynb")  # type: ignore[no-untyped-call]
    async with app_client(root_dir=tmp_path, enable=["users", "jobs"]) as admin:
        ana = await user_headers(admin, "ana")
        bob = await user_headers(admin, "bob")
        viewer = await admin.post("/api/users", json={"name": "vic", "roles": ["viewer"]})
        assert viewer.status_code == 201, viewer.text
        token = (await admin.post("/api/users/vic/tokens")).json()["token"]
        vic = {"Authorization": f"token {token}"}
        export = {"kind": "export", "path": "home/ana/nb.ipynb", "format": "script"}
        run = {"kind": "run", "path": "home/ana/nb.ipynb", "to": "home/ana/run.ipynb"}
        refused = [
            (bob, export, 404),
            (bob, run, 404),
            (bob, {**export, "path": "home/bob/../ana/nb.ipynb"}, 404),
            (ana, {**export, "to": "home/bob/nb.py"}, 404),
            (ana, {**run, "to": "home/bob/run.ipynb"}, 404),
            (vic, export, 404),
            (vic, {**run, "path": "home/vic/nb.ipynb", "to": "home/vic/r.ipynb"}, 403),
        ]
        for headers, body, status in refused:
            response = await admin.post("/api/jobs", headers=headers, json=body)
            assert response.status_code == status, (body, response.text)
        created = await admin.post("/api/jobs", headers=ana, json=export)
        assert created.status_code == 202, created.text
        job_id = created.json()["id"]
        assert (await admin.get(f"/api/jobs/{job_id}", headers=bob)).status_code == 404
        assert (await admin.delete(f"/api/jobs/{job_id}", headers=bob)).status_code == 404
        assert (await admin.delete(f"/api/jobs/{job_id}", headers=ana)).status_code == 204
        job = (await admin.get(f"/api/jobs/{job_id}", headers=ana)).json()
        assert job["status"] == "cancelled"
