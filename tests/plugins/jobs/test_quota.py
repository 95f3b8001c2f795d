"""Per-user job quotas, discarding ended jobs, and private archive files."""

from __future__ import annotations

import os
import stat
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from junction.testing import app_client

from .test_jobs import ended, wait_job

pytestmark = pytest.mark.anyio


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    """``root/data`` with 6000 random (incompressible) bytes."""
    data = tmp_path / "root" / "data"
    data.mkdir(parents=True)
    (data / "random.bin").write_bytes(os.urandom(6000))
    return data


@pytest.fixture
def umask_022() -> Iterator[None]:
    """The usual umask, under which new files are world-readable by default."""
    previous = os.umask(0o022)
    try:
        yield
    finally:
        os.umask(previous)


def _client(tmp_path: Path, *enable: str, **jobs: Any) -> Any:
    return app_client(
        root_dir=tmp_path / "root",
        enable=["jobs", *enable],
        database_url=f"sqlite+aiosqlite:///{tmp_path / 'junction.db'}",
        plugin_settings={"jobs": {"directory": str(tmp_path / "jobs"), **jobs}},
    )


async def _zip(client: httpx.AsyncClient, path: str = "data", **headers: str) -> httpx.Response:
    return await client.post("/api/jobs", json={"kind": "zip", "path": path}, headers=headers)


async def test_the_job_past_max_jobs_per_user_gets_403_until_one_is_discarded(
    tmp_path: Path, folder: Path
) -> None:
    async with _client(tmp_path, max_jobs_per_user=2) as client:
        ids = []
        for _ in range(2):
            created = await _zip(client)
            assert created.status_code == 202, created.text
            ids.append(created.json()["id"])
            await wait_job(client, ids[-1], ended)
        refused = await _zip(client)
        assert refused.status_code == 403
        assert refused.json()["reason"] == "Resource Limit"
        assert "jobs.max_jobs_per_user" in refused.json()["message"]
        assert len((await client.get("/api/jobs")).json()) == 2

        # DELETE still means cancel: an ended job cannot be cancelled.
        assert (await client.delete(f"/api/jobs/{ids[0]}")).status_code == 409
        archive = tmp_path / "jobs" / f"{ids[0]}.zip"
        assert archive.is_file()
        discarded = await client.delete(f"/api/jobs/{ids[0]}", params={"discard": "true"})
        assert discarded.status_code == 204
        assert not archive.exists()
        assert (await client.get(f"/api/jobs/{ids[0]}")).status_code == 404
        assert (await client.get(f"/api/jobs/{ids[0]}/result")).status_code == 404
        assert (await _zip(client)).status_code == 202


async def test_discarding_a_running_job_cancels_it_and_forgets_it(tmp_path: Path) -> None:
    data = tmp_path / "root" / "data"
    data.mkdir(parents=True)
    with (data / "big.bin").open("wb") as stream:
        stream.truncate(2 << 30)  # sparse: keeps the job busy without using the disk
    async with _client(tmp_path) as client:
        job_id = (await _zip(client)).json()["id"]
        discarded = await client.delete(f"/api/jobs/{job_id}", params={"discard": "1"})
        assert discarded.status_code == 204
        assert (await client.get("/api/jobs")).json() == []
        assert list((tmp_path / "jobs").glob(f"{job_id}*")) == []


async def test_a_zip_past_max_bytes_per_user_fails_and_leaves_no_file(
    tmp_path: Path, folder: Path
) -> None:
    async with _client(tmp_path, max_bytes_per_user=7000) as client:
        first = (await _zip(client)).json()["id"]
        done = await wait_job(client, first, ended)
        assert done["status"] == "completed", done
        second = (await _zip(client)).json()["id"]
        failed = await wait_job(client, second, ended)
        assert failed["status"] == "failed"
        assert "jobs.max_bytes_per_user" in failed["error"]
        assert sorted(p.name for p in (tmp_path / "jobs").iterdir()) == [f"{first}.zip"]


async def test_stored_bytes_past_the_quota_refuse_new_zips(tmp_path: Path, folder: Path) -> None:
    async with _client(tmp_path) as client:
        job_id = (await _zip(client)).json()["id"]
        assert (await wait_job(client, job_id, ended))["status"] == "completed"
    async with _client(tmp_path, max_bytes_per_user=1000) as client:
        refused = await _zip(client)
        assert refused.status_code == 403
        assert "jobs.max_bytes_per_user" in refused.json()["message"]
        # Copies store nothing in the jobs directory: only the job count limits them.
        copy = await client.post("/api/jobs", json={"kind": "copy", "path": "data", "to": "c"})
        assert copy.status_code == 202, copy.text


async def test_a_viewers_jobs_count_against_their_own_quota(tmp_path: Path) -> None:
    home = tmp_path / "root" / "home" / "vic" / "data"
    home.mkdir(parents=True)
    (home / "a.txt").write_text("a")
    path = "home/vic/data"
    async with _client(tmp_path, "users", max_jobs_per_user=1) as admin:
        created = await admin.post("/api/users", json={"name": "vic", "roles": ["viewer"]})
        assert created.status_code == 201, created.text
        token = (await admin.post("/api/users/vic/tokens")).json()["token"]
        vic = {"Authorization": f"token {token}"}
        first = await _zip(admin, path, **vic)
        assert first.status_code == 202, first.text
        assert (await _zip(admin, path, **vic)).status_code == 403
        assert (await _zip(admin, path)).status_code == 202  # the administrator's own quota
        await wait_job(admin, first.json()["id"], ended)
        gone = await admin.delete(
            f"/api/jobs/{first.json()['id']}", params={"discard": "true"}, headers=vic
        )
        assert gone.status_code == 204
        assert (await _zip(admin, path, **vic)).status_code == 202


@pytest.mark.usefixtures("umask_022")
async def test_archives_and_their_directory_are_private(tmp_path: Path, folder: Path) -> None:
    async with _client(tmp_path) as client:
        job_id = (await _zip(client)).json()["id"]
        assert (await wait_job(client, job_id, ended))["status"] == "completed"
    assert stat.S_IMODE((tmp_path / "jobs").stat().st_mode) == 0o700
    assert stat.S_IMODE((tmp_path / "jobs" / f"{job_id}.zip").stat().st_mode) == 0o600
