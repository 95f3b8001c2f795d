"""Two servers sharing a PostgreSQL database: any one reaches a kernel the other runs.

Real ``junction`` subprocesses with the same database, token and cookie secret, a real
ipykernel kernel started on one, driven through the other's API and kernel WebSocket.
"""

from __future__ import annotations

import json
import signal
from pathlib import Path

import httpx
import pytest

from junction.plugins.kernels.records import pid_alive
from junction.testing import ServerProcess

from .test_persist import AUTH, kernel_ids, kill_group, run, start_kernel, wait_for

pytestmark = [pytest.mark.e2e, pytest.mark.anyio]


def start_replica(root: Path, name: str, database_url: str) -> ServerProcess:
    """A ``kernels`` profile server on the shared database."""
    args = [
        "--port",
        "0",
        "--ip",
        "127.0.0.1",
        "--profile",
        "kernels",
        "--root-dir",
        str(root),
        "--set",
        f"database_url={database_url}",
        "--set",
        "cookie_secret=replicas-share-this-cookie-secret",
        "--set",
        "kernels.keep_on_shutdown=true",
        "--set",
        "kernels.orphan_grace=60",
        "--set",
        "kernels.lease_timeout=10",
    ]
    return ServerProcess(args, log_path=root / f"{name}.log").start()


async def test_a_kernel_started_on_one_replica_is_used_through_the_other(
    tmp_path: Path, postgres_url: str
) -> None:
    owner = start_replica(tmp_path, "owner", postgres_url)
    other = start_replica(tmp_path, "other", postgres_url)
    groups: list[int] = []
    try:
        kernel_id = start_kernel(owner)
        second_id = start_kernel(owner)
        assert (await run(owner, kernel_id, "y = 6 * 7"))["status"] == "ok"
        second = await run(owner, second_id, "import os; z = 'kept'; os.getpid()")
        groups.append(int(second["result"]))

        assert sorted(kernel_ids(other)) == sorted([kernel_id, second_id])
        model = httpx.get(other.url + f"api/kernels/{kernel_id}", headers=AUTH, timeout=30)
        assert model.status_code == 200, model.text
        assert model.json()["name"] == "python3"
        missing = httpx.get(
            other.url + "api/kernels/00000000-0000-0000-0000-000000000000", headers=AUTH
        )
        assert missing.status_code == 404

        # Same variables through the other replica's WebSocket.
        reply = await run(other, kernel_id, "import os; y, os.getpid()")
        assert reply["status"] == "ok"
        value, pid = json.loads(reply["result"].replace("(", "[").replace(")", "]"))
        assert value == 42
        groups.append(pid)

        # Interrupt through the other replica (interrupt_request on control).
        interrupted = await run(other, kernel_id, "import time; time.sleep(60)", interrupt=True)
        assert interrupted["ename"] == "KeyboardInterrupt"

        # A restart needs the kernel's host: the owner does it, asked through the record.
        restart = httpx.post(
            other.url + f"api/kernels/{kernel_id}/restart", headers=AUTH, timeout=60
        )
        assert restart.status_code == 200, restart.text
        assert f"kernel {kernel_id}: restarting it, as another server asked" in owner.log()
        restarted_pid = int((await run(other, kernel_id, "import os; os.getpid()"))["result"])
        assert restarted_pid != pid
        pid = restarted_pid
        groups.append(pid)

        # Shut down through the other replica: the kernel exits, both forget it.
        deleted = httpx.delete(other.url + f"api/kernels/{kernel_id}", headers=AUTH, timeout=60)
        assert deleted.status_code == 204
        wait_for(lambda: not pid_alive(pid))
        assert kernel_ids(owner) == [second_id]
        assert kernel_ids(other) == [second_id]
        gone = httpx.get(owner.url + f"api/kernels/{kernel_id}", headers=AUTH, timeout=30)
        assert gone.status_code == 404

        # The owner freezes: once its lease ran out the other replica adopts its kernel,
        # which goes on with its variables; the owner, resumed, steps back without killing it.
        assert owner.process is not None
        owner.process.send_signal(signal.SIGSTOP)
        try:
            wait_for(lambda: f"kernel {second_id} (python3) reattached" in other.log(), 60)
            assert kernel_ids(other) == [second_id]
            assert (await run(other, second_id, "z"))["result"] == "'kept'"
        finally:
            owner.process.send_signal(signal.SIGCONT)
        wait_for(lambda: f"kernel {second_id} was taken over by another server" in owner.log())
        assert kernel_ids(owner) == [second_id]
        assert (await run(owner, second_id, "z"))["result"] == "'kept'"
        restarted = httpx.post(
            other.url + f"api/kernels/{second_id}/restart", headers=AUTH, timeout=60
        )
        assert restarted.status_code == 200, restarted.text
        groups.append(int((await run(other, second_id, "import os; os.getpid()"))["result"]))
        deleted = httpx.delete(other.url + f"api/kernels/{second_id}", headers=AUTH, timeout=60)
        assert deleted.status_code == 204
        assert kernel_ids(other) == []
    finally:
        other.stop()
        owner.stop()
        for group in groups:
            kill_group(group)
