"""A restart through a server that does not run the kernel: the running server does it.

Real ``junction`` subprocesses sharing a PostgreSQL database (as in ``test_replicas``), a
real ipykernel kernel started on one and restarted through the other; and the record
methods the request goes through, on SQLite and PostgreSQL.
"""

from __future__ import annotations

import contextlib
import json
import signal
import time
import uuid
from pathlib import Path

import anyio
import httpx
import pytest
import websockets

from junction.database import Database, upgrade
from junction.plugins.kernels.records import KernelRecords, Sealer
from junction.plugins.kernels.tables import TABLES
from junction.testing import ServerProcess

from .test_persist import AUTH, kernel_ids, kill_group, run, start_kernel, wait_for
from .test_persist_records import record

pytestmark = pytest.mark.anyio


def start_replica(
    root: Path, name: str, database_url: str, *settings: str, lease: float = 12
) -> ServerProcess:
    """A ``kernels`` profile server on the shared database, with a short lease."""
    args = ["--port", "0", "--ip", "127.0.0.1", "--profile", "kernels", "--root-dir", str(root)]
    for setting in (
        f"database_url={database_url}",
        "cookie_secret=replicas-share-this-cookie-secret",
        "kernels.keep_on_shutdown=true",
        "kernels.orphan_grace=60",
        f"kernels.lease_timeout={lease:g}",
        *settings,
    ):
        args += ["--set", setting]
    return ServerProcess(args, log_path=root / f"{name}.log").start()


async def watch_statuses(
    server: ServerProcess,
    kernel_id: str,
    seen: list[tuple[str, str]],
    *,
    task_status: anyio.abc.TaskStatus[None],
) -> None:
    """Collect the ``execution_state`` and kernel session of every status message a
    WebSocket client of ``server`` gets, until cancelled; started once it saw one."""
    url = server.url.replace("http://", "ws://", 1) + f"api/kernels/{kernel_id}/channels"
    async with websockets.connect(
        url + f"?session_id={uuid.uuid4().hex}", additional_headers=AUTH, max_size=None
    ) as ws:
        async for raw in ws:
            message = json.loads(raw)
            if message["header"]["msg_type"] == "status":
                seen.append((message["content"]["execution_state"], message["header"]["session"]))
                if len(seen) == 1:
                    task_status.started()


async def pid_of(server: ServerProcess, kernel_id: str) -> int:
    """The kernel's pid, asked through ``server``."""
    return int((await run(server, kernel_id, "import os; os.getpid()"))["result"])


@pytest.mark.e2e
async def test_a_restart_through_the_other_server_is_done_by_the_kernel_s_server(
    tmp_path: Path, postgres_url: str
) -> None:
    owner = start_replica(tmp_path, "owner", postgres_url)
    other = start_replica(tmp_path, "other", postgres_url, "kernels.remote_restart_timeout=6")
    groups: list[int] = []
    try:
        kernel_id = start_kernel(owner)
        assert (await run(owner, kernel_id, "x = 42"))["status"] == "ok"
        before = await pid_of(other, kernel_id)
        groups.append(before)

        # A client on each server: both see the new kernel's statuses, up to idle.
        on_owner: list[tuple[str, str]] = []
        on_other: list[tuple[str, str]] = []
        async with anyio.create_task_group() as watchers:
            await watchers.start(watch_statuses, owner, kernel_id, on_owner)
            await watchers.start(watch_statuses, other, kernel_id, on_other)
            async with httpx.AsyncClient(headers=AUTH, timeout=60) as client:
                restarted = await client.post(other.url + f"api/kernels/{kernel_id}/restart")
            assert restarted.status_code == 200, restarted.text
            assert restarted.json()["id"] == kernel_id
            assert f"kernel {kernel_id}: restarting it, as another server asked" in owner.log()
            old = on_owner[0][1]
            assert on_other[0][1] == old

            def restarted_seen(seen: list[tuple[str, str]]) -> bool:
                return any(state == "idle" and session != old for state, session in seen)

            with anyio.fail_after(30):
                while not (restarted_seen(on_owner) and restarted_seen(on_other)):
                    await anyio.sleep(0.05)
            watchers.cancel_scope.cancel()

        after = await pid_of(other, kernel_id)
        groups.append(after)
        assert after != before
        assert await pid_of(owner, kernel_id) == after
        gone = await run(other, kernel_id, "x")
        assert gone["ename"] == "NameError"
        assert kernel_ids(other) == [kernel_id]

        # The owner freezes: the request is not done within remote_restart_timeout (shorter
        # than the lease), a clean 503; it stands, and the other server, once it adopted
        # the kernel, carries it out.
        assert owner.process is not None
        owner.process.send_signal(signal.SIGSTOP)
        try:
            began = time.monotonic()
            late = httpx.post(
                other.url + f"api/kernels/{kernel_id}/restart", headers=AUTH, timeout=30
            )
            assert time.monotonic() - began < 6 + 10  # the bound, with room for a loaded machine
            assert late.status_code == 503, late.text
            assert late.json()["reason"] == "Kernel restart timed out"
            assert "did not restart it within 6 s" in late.json()["message"]
            wait_for(
                lambda: f"kernel {kernel_id}: restart 2 done" in other.log(),
                60,
            )
            adopted = await pid_of(other, kernel_id)
            groups.append(adopted)
            assert adopted not in (before, after)
        finally:
            owner.process.send_signal(signal.SIGCONT)
        wait_for(lambda: f"kernel {kernel_id} was taken over by another server" in owner.log())
        assert await pid_of(owner, kernel_id) == adopted
        deleted = httpx.delete(other.url + f"api/kernels/{kernel_id}", headers=AUTH, timeout=60)
        assert deleted.status_code == 204
    finally:
        other.stop()
        owner.stop()
        for group in groups:
            kill_group(group)


async def test_restart_requests_are_counted_served_and_read_back(database_url: str) -> None:
    database = Database(database_url)
    try:
        await upgrade(database, [("kernels", TABLES)])
        sealer = Sealer(b"cookie secret")
        owner, other = KernelRecords(database, sealer), KernelRecords(database, sealer)
        other.server = "elsewhere:1:other"
        await owner.save(record("k1", "key"))
        assert await owner.restart_requests() == {}
        assert await other.request_restart("k1") == 1
        assert await other.request_restart("k1") == 2
        assert await other.request_restart("missing") is None
        assert await owner.restart_requests() == {"k1": 2}
        assert await other.restart_requests() == {}  # not its kernel

        await other.mark_restarted("k1", 2, "idle")  # only the running server marks
        assert (await owner.restart_progress("k1")).restarted == 0  # type: ignore[union-attr]
        await owner.mark_restarted("k1", 2, "idle")
        progress = await other.restart_progress("k1")
        assert progress is not None
        assert (progress.restarted, progress.execution_state) == (2, "idle")
        assert progress.server == owner.server
        assert await owner.restart_requests() == {}
        await owner.save(record("k1", "key"))  # a save (after the restart) keeps the counts
        assert (await other.restart_progress("k1")).restarted == 2  # type: ignore[union-attr]
        assert await other.request_restart("k1") == 3
        assert await owner.restart_requests() == {"k1": 3}
        assert await other.restart_progress("missing") is None
    finally:
        await database.close()


@pytest.mark.e2e
async def test_clients_of_the_other_server_keep_a_kernel_from_being_culled(
    tmp_path: Path, postgres_url: str
) -> None:
    culling = ("kernels.cull_idle_timeout=6", "kernels.cull_interval=0.5")
    owner = start_replica(tmp_path, "owner", postgres_url, *culling, lease=6)
    other = start_replica(tmp_path, "other", postgres_url, *culling, lease=6)
    kept = ""
    try:
        # ``kept`` is used, and stays attached, through the other server only; ``idle``
        # starts later and is left alone. Without the other server's clients counting,
        # ``kept`` would be culled first.
        kept = start_kernel(owner)
        seen: list[tuple[str, str]] = []
        async with anyio.create_task_group() as attached:
            await attached.start(watch_statuses, other, kept, seen)
            assert (await run(other, kept, "x = 1"))["status"] == "ok"
            idle = start_kernel(owner)
            wait_for(lambda: f"culling kernel {idle}" in owner.log(), 60)
            wait_for(lambda: idle not in kernel_ids(owner))
            assert f"culling kernel {kept}" not in owner.log()
            assert kernel_ids(owner) == [kept]
            assert kernel_ids(other) == [kept]
            assert (await run(other, kept, "x"))["result"] == "1"
            attached.cancel_scope.cancel()
    finally:
        # Both servers keep their kernels on shutdown: end ``kept`` through its server first.
        with contextlib.suppress(httpx.HTTPError):
            if kept:
                httpx.delete(owner.url + f"api/kernels/{kept}", headers=AUTH, timeout=60)
        other.stop()
        owner.stop()
