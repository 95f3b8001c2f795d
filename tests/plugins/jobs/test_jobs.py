"""The jobs API in-process: zip and copy jobs over real folders, read back with zipfile."""

from __future__ import annotations

import io
import json
import os
import time
import zipfile
from pathlib import Path
from typing import Any

import anyio
import httpx
import pytest

from junction.testing import app_client

pytestmark = pytest.mark.anyio

BIG = 2 << 30
"""A sparse file this large keeps a job busy for a while without using the disk."""


def make_tree(root: Path) -> Path:
    """A folder with nesting, an empty folder, binary and non-ASCII names, a hidden file."""
    folder = root / "project"
    (folder / "src" / "pkg").mkdir(parents=True)
    (folder / "empty").mkdir()
    (folder / "README.md").write_text("# hello\n")
    (folder / "src" / "pkg" / "data.bin").write_bytes(bytes(range(256)) * 4096)
    (folder / "src" / "été.txt").write_text("ünïcode\n", encoding="utf-8")
    (folder / ".secret").write_text("hidden")
    (folder / ".git").mkdir()
    (folder / ".git" / "HEAD").write_text("ref")
    return folder


def expected_files(folder: Path) -> dict[str, bytes]:
    """Every non-hidden file below ``folder``, by relative name."""
    found = {}
    for path in folder.rglob("*"):
        name = path.relative_to(folder).as_posix()
        if path.is_file() and not any(part.startswith(".") for part in name.split("/")):
            found[name] = path.read_bytes()
    return found


def sparse(path: Path, size: int = BIG) -> None:
    """A file of ``size`` zero bytes that takes no disk space."""
    with path.open("wb") as stream:
        stream.truncate(size)


async def wait_job(client: httpx.AsyncClient, job_id: str, condition: Any) -> dict[str, Any]:
    """Poll the job until ``condition(job)``; fail after 120 s."""
    with anyio.fail_after(120):
        while True:
            job: dict[str, Any] = (await client.get(f"/api/jobs/{job_id}")).json()
            if condition(job):
                return job
            await anyio.sleep(0.02)


def ended(job: dict[str, Any]) -> bool:
    """Whether a job has reached a final state."""
    return job["status"] in ("completed", "failed", "cancelled")


def running(job: dict[str, Any]) -> bool:
    """Whether a job runs and has made some progress."""
    return bool(job["status"] == "running" and job["progress"]["done"] > 0)


async def test_zip_job_archives_a_folder_readable_by_zipfile(tmp_path: Path) -> None:
    folder = make_tree(tmp_path)
    async with app_client(root_dir=tmp_path, enable=["jobs"]) as client:
        response = await client.post("/api/jobs", json={"kind": "zip", "path": "project"})
        assert response.status_code == 202, response.text
        job = response.json()
        assert response.headers["location"] == f"/api/jobs/{job['id']}"
        assert job["status"] in ("pending", "running")
        assert job["kind"] == "zip"
        assert job["path"] == "project"
        job = await wait_job(client, job["id"], ended)
        assert job["status"] == "completed", job
        total = sum(len(data) for data in expected_files(folder).values())
        assert job["progress"] == {"done": total, "total": total, "unit": "bytes"}
        assert job["result"]["name"] == "project.zip"
        assert job["result"]["url"] == f"/api/jobs/{job['id']}/result"
        download = await client.get(job["result"]["url"])
        assert download.status_code == 200
        assert download.headers["content-type"] == "application/zip"
        assert 'filename="project.zip"' in download.headers["content-disposition"]
        assert len(download.content) == job["result"]["size"]
        listed = (await client.get("/api/jobs")).json()
        assert [item["id"] for item in listed] == [job["id"]]

    with zipfile.ZipFile(io.BytesIO(download.content)) as archive:
        assert archive.testzip() is None
        files = {
            info.filename: archive.read(info) for info in archive.infolist() if not info.is_dir()
        }
        dirs = {info.filename for info in archive.infolist() if info.is_dir()}
        assert all(info.flag_bits & 0x08 for info in archive.infolist() if not info.is_dir())
    assert files == expected_files(folder)
    assert dirs == {"empty/", "src/", "src/pkg/"}
    assert not any(name.startswith(".") for name in files)


async def test_zip_job_events_stream_until_the_end(tmp_path: Path) -> None:
    make_tree(tmp_path)
    async with app_client(root_dir=tmp_path, enable=["jobs"]) as client:
        job = (await client.post("/api/jobs", json={"kind": "zip", "path": "project"})).json()
        events = []
        async with client.stream("GET", f"/api/jobs/{job['id']}/events") as stream:
            assert stream.headers["content-type"].startswith("text/event-stream")
            assert stream.headers["x-accel-buffering"] == "no"
            async for line in stream.aiter_lines():
                if line.startswith("data: "):
                    events.append(json.loads(line.removeprefix("data: ")))
        assert events[0]["id"] == job["id"]
        assert events[-1]["status"] == "completed"
        assert all(not ended(event) for event in events[:-1])


async def test_a_folder_changed_while_zipped_fails_the_job_and_leaves_no_archive(
    tmp_path: Path, jupyter_data_dir: Path
) -> None:
    folder = tmp_path / "busy"
    folder.mkdir()
    sparse(folder / "a-big.bin")
    (folder / "b.txt").write_text("before")
    async with app_client(root_dir=tmp_path, enable=["jobs"]) as client:
        job = (await client.post("/api/jobs", json={"kind": "zip", "path": "busy"})).json()
        await wait_job(client, job["id"], running)
        os.utime(folder / "a-big.bin", ns=(1, 1))
        job = await wait_job(client, job["id"], ended)
        assert job["status"] == "failed"
        assert job["error"] == (
            "the folder changed while the job ran: a-big.bin changed while it was read"
        )
        assert job["result"] is None
        result = await client.get(f"/api/jobs/{job['id']}/result")
        assert result.status_code == 409
    assert not list((jupyter_data_dir / "junction" / "jobs").iterdir())


async def test_a_file_removed_while_zipped_fails_the_job(tmp_path: Path) -> None:
    folder = tmp_path / "busy"
    folder.mkdir()
    sparse(folder / "a-big.bin")
    (folder / "b.txt").write_text("soon gone")
    async with app_client(root_dir=tmp_path, enable=["jobs"]) as client:
        job = (await client.post("/api/jobs", json={"kind": "zip", "path": "busy"})).json()
        await wait_job(client, job["id"], running)
        (folder / "a-big.bin").unlink()
        job = await wait_job(client, job["id"], ended)
        assert job["status"] == "failed"
        assert "a-big.bin was removed" in job["error"]


async def test_cancelling_a_running_job_stops_it_and_a_finished_one_is_a_conflict(
    tmp_path: Path, jupyter_data_dir: Path
) -> None:
    folder = tmp_path / "big"
    folder.mkdir()
    sparse(folder / "zeros.bin", 8 * BIG)
    async with app_client(root_dir=tmp_path, enable=["jobs"]) as client:
        job = (await client.post("/api/jobs", json={"kind": "zip", "path": "big"})).json()
        await wait_job(client, job["id"], running)
        response = await client.delete(f"/api/jobs/{job['id']}")
        assert response.status_code == 204
        job = (await client.get(f"/api/jobs/{job['id']}")).json()
        assert job["status"] == "cancelled"
        assert 0 < job["progress"]["done"] < job["progress"]["total"]
        again = await client.delete(f"/api/jobs/{job['id']}")
        assert again.status_code == 409
        assert again.json()["reason"] == "Conflict"
        assert (await client.get(f"/api/jobs/{job['id']}/result")).status_code == 409
    assert not list((jupyter_data_dir / "junction" / "jobs").iterdir())


async def test_cancelling_a_completed_job_is_a_conflict(tmp_path: Path) -> None:
    make_tree(tmp_path)
    async with app_client(root_dir=tmp_path, enable=["jobs"]) as client:
        job = (await client.post("/api/jobs", json={"kind": "zip", "path": "project"})).json()
        await wait_job(client, job["id"], ended)
        response = await client.delete(f"/api/jobs/{job['id']}")
        assert response.status_code == 409
        assert "already ended (completed)" in response.json()["message"]


async def test_pending_jobs_wait_for_a_slot_and_can_be_cancelled(tmp_path: Path) -> None:
    folder = tmp_path / "big"
    folder.mkdir()
    sparse(folder / "zeros.bin", 8 * BIG)
    make_tree(tmp_path)
    async with app_client(
        root_dir=tmp_path, enable=["jobs"], plugin_settings={"jobs": {"max_running": 1}}
    ) as client:
        first = (await client.post("/api/jobs", json={"kind": "zip", "path": "big"})).json()
        await wait_job(client, first["id"], running)
        second = (await client.post("/api/jobs", json={"kind": "zip", "path": "project"})).json()
        assert (await client.get(f"/api/jobs/{second['id']}")).json()["status"] == "pending"
        assert (await client.delete(f"/api/jobs/{second['id']}")).status_code == 204
        assert (await client.get(f"/api/jobs/{second['id']}")).json()["status"] == "cancelled"
        assert (await client.delete(f"/api/jobs/{first['id']}")).status_code == 204


async def test_copy_job_copies_a_folder_to_a_new_path(tmp_path: Path) -> None:
    folder = make_tree(tmp_path)
    (tmp_path / "backups").mkdir()
    async with app_client(root_dir=tmp_path, enable=["jobs"]) as client:
        body = {"kind": "copy", "path": "project", "to": "backups/project-copy"}
        job = (await client.post("/api/jobs", json=body)).json()
        assert job["to"] == "backups/project-copy"
        job = await wait_job(client, job["id"], ended)
        assert job["status"] == "completed", job
        assert job["result"]["entries"] == 6
        exists = await client.post("/api/jobs", json=body)
        assert exists.status_code == 409
    copy = tmp_path / "backups" / "project-copy"
    assert expected_files(copy) == expected_files(folder)
    assert (copy / "empty").is_dir()
    assert not (copy / ".secret").exists()
    assert [p.name for p in (tmp_path / "backups").iterdir()] == ["project-copy"]
    source = folder / "src" / "pkg" / "data.bin"
    copied = copy / "src" / "pkg" / "data.bin"
    assert os.stat(copied).st_mtime_ns == os.stat(source).st_mtime_ns


async def test_a_cancelled_copy_leaves_nothing_behind(tmp_path: Path) -> None:
    folder = tmp_path / "big"
    folder.mkdir()
    with (folder / "random.bin").open("wb") as stream:
        stream.truncate(BIG)
    async with app_client(root_dir=tmp_path, enable=["jobs"]) as client:
        body = {"kind": "copy", "path": "big", "to": "big-copy"}
        job = (await client.post("/api/jobs", json=body)).json()
        await wait_job(client, job["id"], running)
        assert (await client.delete(f"/api/jobs/{job['id']}")).status_code == 204
    assert sorted(p.name for p in tmp_path.iterdir()) == ["big"]


@pytest.mark.parametrize(
    ("body", "status"),
    [
        ({"kind": "zip", "path": "../outside"}, 400),
        ({"kind": "zip", "path": "project/../../x"}, 400),
        ({"kind": "zip", "path": "missing"}, 404),
        ({"kind": "zip", "path": "project/README.md"}, 400),
        ({"kind": "zip", "path": "link-out"}, 404),
        ({"kind": "zip", "path": "project", "to": "x"}, 400),
        ({"kind": "copy", "path": "project"}, 400),
        ({"kind": "copy", "path": "project", "to": "../escape"}, 400),
        ({"kind": "copy", "path": "project", "to": "nowhere/deep/copy"}, 404),
        ({"kind": "copy", "path": "project", "to": "project"}, 409),
        ({"kind": "render", "path": "project"}, 400),
        ({"kind": "zip", "path": "project", "extra": 1}, 400),
        ({"kind": "zip"}, 400),
    ],
)
async def test_bad_job_requests_get_clear_errors(
    tmp_path: Path, body: dict[str, Any], status: int
) -> None:
    root = tmp_path / "root"
    root.mkdir()
    make_tree(root)
    (tmp_path / "outside").mkdir()
    (root / "link-out").symlink_to(tmp_path / "outside")
    async with app_client(root_dir=root, enable=["jobs"]) as client:
        response = await client.post("/api/jobs", json=body)
        assert response.status_code == status, response.text
        assert set(response.json()) >= {"message", "reason"}
        assert (await client.get("/api/jobs")).json() == []


async def test_symbolic_links_inside_the_folder_are_never_followed(tmp_path: Path) -> None:
    root = tmp_path / "root"
    folder = make_tree(root)
    (tmp_path / "private.txt").write_text("not yours")
    (folder / "escape.txt").symlink_to(tmp_path / "private.txt")
    async with app_client(root_dir=root, enable=["jobs"]) as client:
        job = (await client.post("/api/jobs", json={"kind": "zip", "path": "project"})).json()
        job = await wait_job(client, job["id"], ended)
        archive = zipfile.ZipFile(io.BytesIO((await client.get(job["result"]["url"])).content))
    assert "escape.txt" not in archive.namelist()
    assert b"not yours" not in b"".join(archive.read(name) for name in archive.namelist())


async def test_unknown_jobs_are_404(tmp_path: Path) -> None:
    async with app_client(root_dir=tmp_path, enable=["jobs"]) as client:
        for method, suffix in [
            ("GET", ""),
            ("DELETE", ""),
            ("GET", "/events"),
            ("GET", "/result"),
        ]:
            response = await client.request(method, f"/api/jobs/0123abcd{suffix}")
            assert response.status_code == 404, (method, suffix)
            assert response.json()["message"] == "No such job: 0123abcd"


async def test_job_records_survive_a_restart(tmp_path: Path) -> None:
    make_tree(tmp_path)
    async with app_client(root_dir=tmp_path, enable=["jobs"]) as client:
        job = (await client.post("/api/jobs", json={"kind": "zip", "path": "project"})).json()
        done = await wait_job(client, job["id"], ended)
    async with app_client(root_dir=tmp_path, enable=["jobs"]) as client:
        again = (await client.get(f"/api/jobs/{job['id']}")).json()
        assert again == done
        download = await client.get(done["result"]["url"])
        assert zipfile.ZipFile(io.BytesIO(download.content)).testzip() is None


async def test_ended_jobs_are_forgotten_after_keep_days(
    tmp_path: Path, jupyter_data_dir: Path
) -> None:
    make_tree(tmp_path)
    async with app_client(root_dir=tmp_path, enable=["jobs"]) as client:
        job = (await client.post("/api/jobs", json={"kind": "zip", "path": "project"})).json()
        await wait_job(client, job["id"], ended)
    archives = jupyter_data_dir / "junction" / "jobs"
    assert [p.name for p in archives.iterdir()] == [f"{job['id']}.zip"]
    settings = {"jobs": {"keep_days": 1e-9}}
    async with app_client(root_dir=tmp_path, enable=["jobs"], plugin_settings=settings) as client:
        with anyio.fail_after(30):
            while (await client.get(f"/api/jobs/{job['id']}")).status_code != 404:
                await anyio.sleep(0.02)
    assert list(archives.iterdir()) == []


async def test_running_jobs_are_a_metric(tmp_path: Path) -> None:
    from prometheus_client.parser import text_string_to_metric_families

    folder = tmp_path / "big"
    folder.mkdir()
    sparse(folder / "zeros.bin", 8 * BIG)
    async with app_client(root_dir=tmp_path, enable=["jobs"]) as client:
        job = (await client.post("/api/jobs", json={"kind": "zip", "path": "big"})).json()
        await wait_job(client, job["id"], running)
        text = (await client.get("/metrics")).text
        await client.delete(f"/api/jobs/{job['id']}")
        after = (await client.get("/metrics")).text

    def samples(body: str) -> dict[str, float]:
        families = text_string_to_metric_families(body)
        return {
            s.labels["status"]: s.value
            for f in families
            if f.name == "junction_jobs"
            for s in f.samples
        }

    assert samples(text) == {"pending": 0, "running": 1}
    assert samples(after) == {"pending": 0, "running": 0}


async def test_a_job_running_at_shutdown_is_recorded_failed(tmp_path: Path) -> None:
    folder = tmp_path / "big"
    folder.mkdir()
    sparse(folder / "zeros.bin", 8 * BIG)
    async with app_client(root_dir=tmp_path, enable=["jobs"]) as client:
        job = (await client.post("/api/jobs", json={"kind": "zip", "path": "big"})).json()
        await wait_job(client, job["id"], running)
    async with app_client(root_dir=tmp_path, enable=["jobs"]) as client:
        after = (await client.get(f"/api/jobs/{job['id']}")).json()
    assert after["status"] == "failed"
    assert after["error"] == "the server stopped while the job ran"


async def test_servers_sharing_the_database_show_and_cancel_each_others_jobs(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("junction.plugins.jobs.runner.HEARTBEAT", 0.05)
    folder = tmp_path / "big"
    folder.mkdir()
    sparse(folder / "zeros.bin", 8 * BIG)
    async with (
        app_client(root_dir=tmp_path, enable=["jobs"]) as first,
        app_client(root_dir=tmp_path, enable=["jobs"]) as second,
    ):
        job = (await first.post("/api/jobs", json={"kind": "zip", "path": "big"})).json()
        seen = await wait_job(second, job["id"], running)
        assert seen["progress"]["total"] == 8 * BIG
        response = await second.delete(f"/api/jobs/{job['id']}")
        assert response.status_code == 204
        assert (await second.get(f"/api/jobs/{job['id']}")).json()["status"] == "cancelled"
        assert (await first.get(f"/api/jobs/{job['id']}")).json()["status"] == "cancelled"


async def test_jobs_of_a_server_that_stopped_beating_are_failed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from sqlalchemy import insert

    from junction.plugins.jobs.tables import JOBS_TABLE
    from junction.services import DATABASE

    monkeypatch.setattr("junction.plugins.jobs.runner.HEARTBEAT", 0.05)
    now = time.time()
    row = {
        "seq": 1,
        "owner": "someone",
        "kind": "zip",
        "status": "running",
        "path": "",
        "created": now,
        "updated": now,
        "done": 5,
        "cancel": False,
    }
    async with app_client(root_dir=tmp_path, enable=["jobs"]) as client:
        database = client.app.state.services.get(DATABASE)
        async with database.session() as session:
            await session.execute(
                insert(JOBS_TABLE).values(
                    id="remote-alive", server="elsewhere/:7:abc", heartbeat=now + 3600, **row
                )
            )
            await session.execute(
                insert(JOBS_TABLE).values(
                    id="remote-gone", server="elsewhere/:7:abc", heartbeat=now - 3600, **row
                )
            )
        gone = await wait_job(client, "remote-gone", ended)
        assert gone["status"] == "failed"
        assert gone["error"] == "the server stopped while the job ran"
        alive = (await client.get("/api/jobs/remote-alive")).json()
        assert alive["status"] == "running"
        assert alive["progress"]["done"] == 5


async def test_a_job_whose_task_is_cancelled_stops_its_worker_thread(tmp_path: Path) -> None:
    from junction.plugins.jobs import JOBS

    folder = tmp_path / "big"
    folder.mkdir()
    sparse(folder / "zeros.bin", 8 * BIG)
    async with app_client(root_dir=tmp_path, enable=["jobs"]) as client:
        jobs = client.app.state.services.get(JOBS)
        job = (await client.post("/api/jobs", json={"kind": "zip", "path": "big"})).json()
        await wait_job(client, job["id"], running)
        live = jobs._live[job["id"]]
        with anyio.fail_after(30):  # the worker would need minutes to read 16 GiB
            async with anyio.create_task_group() as group:
                group.start_soon(jobs._pulse, live)
                await anyio.sleep(0.2)
                group.cancel_scope.cancel()
            await live.finished.wait()
        assert (await client.get(f"/api/jobs/{job['id']}")).json()["status"] == "cancelled"
