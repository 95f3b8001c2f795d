"""Two servers sharing a PostgreSQL database: any one reaches a kernel the other runs.

Real ``junction`` subprocesses with the same database, token and cookie secret, a real
ipykernel kernel started on one, driven through the other's API and kernel WebSocket.
"""

from __future__ import annotations

import json
import os
import signal
import uuid
from pathlib import Path

import anyio
import httpx
import pytest
import websockets

from junction.plugins.kernels.records import pid_alive
from junction.testing import ServerProcess, execute_request

from .test_persist import AUTH, kernel_ids, kill_group, run, start_kernel, wait_for

LEASE_TIMEOUT = 10.0
HEARTBEAT = LEASE_TIMEOUT / 6
"""How often a replica renews its records and closes its sockets to unused remote kernels."""

pytestmark = [pytest.mark.e2e, pytest.mark.anyio]


def start_replica(root: Path, name: str, database_url: str, *settings: str) -> ServerProcess:
    """A ``kernels`` profile server on the shared database, with extra ``settings``
    (``key=value``)."""
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
        f"kernels.lease_timeout={LEASE_TIMEOUT:g}",
    ]
    for setting in settings:
        args += ["--set", setting]
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


async def test_a_handshake_waiting_for_a_kernel_of_another_replica_keeps_its_sockets(
    tmp_path: Path, postgres_url: str
) -> None:
    """Every heartbeat, a replica closes its sockets to kernels of other replicas that no
    client uses. A WebSocket whose handshake is still waiting for such a kernel to answer
    (here the kernel is stopped for three heartbeats) uses them: they stay open, and the
    handshake succeeds once the kernel answers, well within ``kernels.reattach_timeout``
    (10 s), instead of waiting on closed sockets and failing with 503."""
    owner = start_replica(tmp_path, "owner", postgres_url)
    other = start_replica(tmp_path, "other", postgres_url)
    pid = 0
    try:
        kernel_id = start_kernel(owner)
        pid = int((await run(owner, kernel_id, "import os; os.getpid()"))["result"])
        url = other.url.replace("http://", "ws://", 1) + f"api/kernels/{kernel_id}/channels"
        os.kill(pid, signal.SIGSTOP)
        try:
            async with anyio.create_task_group() as group:

                async def resume() -> None:
                    await anyio.sleep(3 * HEARTBEAT)
                    os.kill(pid, signal.SIGCONT)

                group.start_soon(resume)
                async with websockets.connect(
                    url + f"?session_id={uuid.uuid4().hex}",
                    additional_headers=AUTH,
                    open_timeout=60,
                ) as ws:
                    await ws.send(json.dumps(execute_request("6 * 7")[1]))
                    with anyio.fail_after(30):
                        while True:
                            message = json.loads(await ws.recv())
                            if message["header"]["msg_type"] == "execute_result":
                                break
        finally:
            os.kill(pid, signal.SIGCONT)
        assert message["content"]["data"]["text/plain"] == "42"
    finally:
        other.stop()
        owner.stop()
        if pid:
            kill_group(pid)


async def test_handshakes_piling_up_on_a_silent_kernel_each_wait_one_timeout(
    tmp_path: Path, postgres_url: str
) -> None:
    """Clients that give up on a handshake to a kernel of another server that does not
    answer (stopped here) leave their attempts queued on that server. A client arriving
    after ten of them gets its 503 within about one ``kernels.reattach_timeout`` (2 s here),
    not after the ten attempts ahead of it (20 s)."""
    owner = start_replica(tmp_path, "owner", postgres_url)
    other = start_replica(
        tmp_path, "other", postgres_url, "kernels.reattach_timeout=2", "kernels.reconnect_window=0"
    )
    pid = 0
    try:
        kernel_id = start_kernel(owner)
        pid = int((await run(owner, kernel_id, "import os; os.getpid()"))["result"])
        url = other.url.replace("http://", "ws://", 1) + f"api/kernels/{kernel_id}/channels"
        os.kill(pid, signal.SIGSTOP)
        try:
            for _ in range(10):
                with pytest.raises(TimeoutError):
                    async with websockets.connect(url, additional_headers=AUTH, open_timeout=0.2):
                        pass
            started = anyio.current_time()
            with pytest.raises(websockets.InvalidStatus) as refused:
                async with websockets.connect(url, additional_headers=AUTH, open_timeout=60):
                    pass
            waited = anyio.current_time() - started
        finally:
            os.kill(pid, signal.SIGCONT)
        assert refused.value.response.status_code == 503
        assert waited < 6, f"the handshake waited {waited:.1f} s behind the abandoned ones"
        reply = await run(other, kernel_id, "6 * 7")  # the kernel answers again: served
        assert reply["result"] == "42"
    finally:
        other.stop()
        owner.stop()
        if pid:
            kill_group(pid)
