"""The jobs API on a real ``junction`` process, on SQLite and PostgreSQL: a streamed download
read by zipfile, and a server killed mid-job whose job is failed after the restart."""

from __future__ import annotations

import signal
import time
import zipfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest

from junction.testing import TEST_TOKEN, ServerProcess

pytestmark = [pytest.mark.e2e]

AUTH = {"Authorization": f"token {TEST_TOKEN}"}


def start(root: Path, database_url: str, log_name: str) -> ServerProcess:
    """A ``junction`` running only the jobs plugin."""
    config = root.parent / f"{log_name}.toml"
    config.write_text(f'database_url = "{database_url}"\n')
    args = ["--config", str(config), "--profile", "none", "--enable", "jobs"]
    args += ["--port", "0", "--root-dir", str(root)]
    return ServerProcess(args, log_path=root.parent / f"{log_name}.log").start()


def wait_job(server: ServerProcess, job_id: str, condition: Callable[[Any], bool]) -> Any:
    """Poll the job until ``condition(job)``; fail after 120 s."""
    deadline = time.monotonic() + 120
    while True:
        job = httpx.get(server.url + f"api/jobs/{job_id}", headers=AUTH).json()
        if condition(job):
            return job
        assert time.monotonic() < deadline, job
        time.sleep(0.02)


def test_zip_download_over_the_wire(tmp_path: Path, database_url: str) -> None:
    root = tmp_path / "root"
    (root / "data" / "deep").mkdir(parents=True)
    (root / "data" / "deep" / "numbers.csv").write_text("\n".join(map(str, range(100_000))))
    (root / "data" / "blob.bin").write_bytes(bytes(range(256)) * 40_000)
    server = start(root, database_url, "zip")
    try:
        created = httpx.post(
            server.url + "api/jobs", headers=AUTH, json={"kind": "zip", "path": "data"}
        )
        assert created.status_code == 202, created.text
        job = wait_job(server, created.json()["id"], lambda j: j["status"] != "running")
        assert job["status"] == "completed", job
        target = tmp_path / "download.zip"
        url = server.url + job["result"]["url"].lstrip("/")
        with httpx.stream("GET", url, headers=AUTH) as response, target.open("wb") as out:
            assert response.status_code == 200
            for chunk in response.iter_bytes():
                out.write(chunk)
    finally:
        server.stop()
    with zipfile.ZipFile(target) as archive:
        assert archive.testzip() is None
        assert archive.read("deep/numbers.csv") == (root / "data/deep/numbers.csv").read_bytes()
        assert archive.read("blob.bin") == (root / "data/blob.bin").read_bytes()


def test_a_job_of_a_killed_server_is_failed_after_the_restart(
    tmp_path: Path, database_url: str, jupyter_data_dir: Path
) -> None:
    root = tmp_path / "root"
    (root / "big").mkdir(parents=True)
    with (root / "big" / "zeros.bin").open("wb") as stream:
        stream.truncate(16 << 30)
    server = start(root, database_url, "first")
    try:
        created = httpx.post(
            server.url + "api/jobs", headers=AUTH, json={"kind": "zip", "path": "big"}
        )
        job_id = created.json()["id"]
        wait_job(server, job_id, lambda j: j["status"] == "running" and j["progress"]["done"])
    finally:
        assert server.stop(signal.SIGKILL) == -signal.SIGKILL
    server = start(root, database_url, "second")
    try:
        job = httpx.get(server.url + f"api/jobs/{job_id}", headers=AUTH).json()
        assert job["status"] == "failed"
        assert job["error"] == "the server stopped while the job ran"
        again = httpx.delete(server.url + f"api/jobs/{job_id}", headers=AUTH)
        assert again.status_code == 409
    finally:
        server.stop()
    assert list((jupyter_data_dir / "junction" / "jobs").iterdir()) == []
