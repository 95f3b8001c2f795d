"""Records changed outside the server: never acted upon.

Whoever may write the database without holding the cookie secret (another tenant of it) must
not get the server to delete a file, signal a process or hand a kernel to someone else.
Real processes for the signal checks; a real server and a real kernel for the forged row.
"""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
import uuid
from pathlib import Path

import httpx
import pytest
from jupyter_client.kernelspec import KernelSpec
from jupyter_client.provisioning.local_provisioner import LocalProvisioner
from tests.plugins.kernels.test_persist import (
    AUTH,
    kernel_ids,
    sqlite_rows,
    start_kernel,
    start_server,
    wait_for,
)

from junction.plugins.kernels.reattach import kernel_group, kernel_process, reattached_class
from junction.plugins.kernels.records import pid_alive, server_id

pytestmark = pytest.mark.anyio


def _sleeper(kernel_id: str) -> subprocess.Popen[bytes]:
    """A process in a group of its own whose command line names ``kernel_id``, as a kernel's
    names its connection file."""
    child = subprocess.Popen(
        [sys.executable, "-c", "import time; time.sleep(120)", f"kernel-{kernel_id}.json"],
        start_new_session=True,
    )
    cmdline = Path(f"/proc/{child.pid}/cmdline")
    wait_for(lambda: kernel_id.encode() in cmdline.read_bytes())  # it runs its own program
    return child


def test_only_the_kernels_own_process_and_group_count() -> None:
    kernel_id = str(uuid.uuid4())
    child = _sleeper(kernel_id)
    try:
        assert kernel_process(child.pid, kernel_id)
        assert not kernel_process(child.pid, str(uuid.uuid4()))
        assert not kernel_process(1, kernel_id)
        assert not kernel_process(0, kernel_id)
        assert not kernel_process(-1, kernel_id)
        assert not kernel_process(os.getpid(), kernel_id)
        assert not kernel_process("1234", kernel_id)
        assert kernel_group(child.pid, child.pid)
        assert not kernel_group(child.pid, os.getpgid(0))
        assert not kernel_group(child.pid, 1)
        assert not kernel_group(child.pid, child.pid + 1)
    finally:
        child.kill()
        child.wait()
    assert not kernel_process(child.pid, kernel_id)  # reaped: gone


async def test_a_reattached_provisioner_signals_only_its_kernel() -> None:
    kernel_id = str(uuid.uuid4())
    stranger, kernel = _sleeper(str(uuid.uuid4())), _sleeper(kernel_id)
    try:
        provisioner = reattached_class(LocalProvisioner)(
            kernel_id=kernel_id, kernel_spec=KernelSpec()
        )
        provisioner.pid = provisioner.pgid = stranger.pid  # a pid given to another process
        assert not provisioner.has_process
        await provisioner.kill()
        assert stranger.poll() is None

        provisioner.pid, provisioner.pgid = kernel.pid, os.getpgid(0)  # the server's group
        await provisioner.send_signal(signal.SIGSTOP)  # the pid alone gets it
        wait_for(lambda: Path(f"/proc/{kernel.pid}/stat").read_text().split()[2] == "T")
        await provisioner.send_signal(signal.SIGCONT)

        provisioner.pgid = kernel.pid
        assert provisioner.has_process
        await provisioner.kill()
        assert kernel.wait(timeout=30) == -signal.SIGKILL
        assert stranger.poll() is None
    finally:
        for child in (stranger, kernel):
            child.kill()
            child.wait()


@pytest.mark.e2e
def test_a_forged_row_deletes_no_file_and_signals_no_process(
    tmp_path: Path, jupyter_data_dir: Path
) -> None:
    victim = tmp_path / "victim.txt"
    victim.write_text("precious")
    bystander = _sleeper(str(uuid.uuid4()))
    server = start_server(tmp_path, "server", "kernels.lease_timeout=3")
    try:
        genuine = start_kernel(server)
        [row] = sqlite_rows(jupyter_data_dir)
        kernel_pid = int(json.loads(row["provisioner"])["pid"])
        host = server_id().rsplit(":", 2)[0]
        dead = subprocess.Popen([sys.executable, "-c", ""])
        dead.wait()
        forged = {
            "kind": "local",
            "pid": dead.pid,
            "pgid": dead.pid,
            "connection_file": str(victim),
            "independent": True,
        }
        stolen = {**forged, "pid": bystander.pid, "pgid": bystander.pid}
        forgeries = [
            # Another row with the genuine row's sealed key, naming a dead server.
            {
                **row,
                "id": str(uuid.uuid4()),
                "server": f"{host}:999999:deadbeef",
                "provisioner": json.dumps(forged),
            },
            # The same for another owner, naming a live process: a kernel to signal it.
            {
                **row,
                "id": str(uuid.uuid4()),
                "server": f"{host}:999998:deadbeef",
                "owner": "mallory",
                "provisioner": json.dumps(stolen),
            },
        ]
        database = sqlite3.connect(jupyter_data_dir / "junction" / "junction.db")
        try:
            for forgery in forgeries:
                columns = ", ".join(forgery)
                marks = ", ".join("?" for _ in forgery)
                database.execute(
                    f"INSERT INTO kernels_kernels ({columns}) VALUES ({marks})",  # noqa: S608
                    list(forgery.values()),
                )
            database.commit()
        finally:
            database.close()

        def warned() -> bool:
            log = server.log_path.read_text(errors="replace")
            return all(f"kernel {f['id']}: its record does not match" in log for f in forgeries)

        inserted = time.time()

        def heartbeat() -> float:
            [found] = [r for r in sqlite_rows(jupyter_data_dir) if r["id"] == genuine]
            return float(found["heartbeat"])

        wait_for(lambda: heartbeat() > inserted, timeout=60)
        renewed = heartbeat()
        wait_for(lambda: heartbeat() > renewed, timeout=60)  # an adoption round since
        assert warned()
        assert victim.read_text() == "precious"
        assert pid_alive(bystander.pid)
        assert pid_alive(kernel_pid)
        assert kernel_ids(server) == [genuine]
        ids = {found["id"] for found in sqlite_rows(jupyter_data_dir)}
        assert ids == {genuine, *(f["id"] for f in forgeries)}  # left as they are
        for forgery in forgeries:
            url = server.url + f"api/kernels/{forgery['id']}"
            response = httpx.get(url, headers=AUTH, timeout=30)
            assert response.status_code == 404, response.text
        deleted = httpx.delete(server.url + f"api/kernels/{genuine}", headers=AUTH, timeout=30)
        assert deleted.status_code == 204, deleted.text
    finally:
        server.stop()
        bystander.kill()
        bystander.wait()
