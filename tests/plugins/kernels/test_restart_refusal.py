"""A restart the kernel's server refuses, asked through another server: the same 409.

Real ``junction`` subprocesses sharing a PostgreSQL database (as in ``test_replica_restart``),
a real ipykernel kernel that takes its time to exit, shut down on its server while the other
server asks for a restart; and the record methods the refusal goes through, on SQLite and
PostgreSQL.
"""

from __future__ import annotations

import contextlib
from pathlib import Path

import anyio
import httpx
import pytest

from junction.database import Database, upgrade
from junction.plugins.kernels.records import KernelRecords, Sealer
from junction.plugins.kernels.tables import TABLES

from .test_persist import AUTH, kill_group, run, start_kernel
from .test_persist_records import record
from .test_replica_restart import pid_of, start_replica

pytestmark = pytest.mark.anyio


def lingering_exit(entered: Path, release: Path) -> str:
    """Kernel code that makes its process, once asked to exit, touch ``entered`` and wait
    (up to 60 s) for ``release`` to exist before it exits."""
    return (
        "import atexit, os, pathlib, time\n"
        "def linger():\n"
        f"    pathlib.Path({str(entered)!r}).touch()\n"
        "    deadline = time.monotonic() + 60\n"
        f"    while not os.path.exists({str(release)!r}) and time.monotonic() < deadline:\n"
        "        time.sleep(0.05)\n"
        "atexit.register(linger)\n"
    )


@pytest.mark.e2e
async def test_a_restart_of_a_kernel_shutting_down_on_its_server_is_refused_through_the_other(
    tmp_path: Path, postgres_url: str
) -> None:
    # The owner waits for the kernel to exit (not killing it), so the shutdown lasts until
    # the test releases it.
    owner = start_replica(tmp_path, "owner", postgres_url, "kernels.shutdown_wait_time=60")
    other = start_replica(tmp_path, "other", postgres_url, "kernels.remote_restart_timeout=30")
    entered, release = tmp_path / "exiting", tmp_path / "release"
    group: int | None = None
    try:
        kernel_id = start_kernel(owner)
        group = await pid_of(owner, kernel_id)
        assert (await run(owner, kernel_id, lingering_exit(entered, release)))["status"] == "ok"

        async with httpx.AsyncClient(headers=AUTH, timeout=90) as client:
            deleted: list[httpx.Response] = []

            async def shut_down() -> None:
                deleted.append(await client.delete(owner.url + f"api/kernels/{kernel_id}"))

            async with anyio.create_task_group() as tasks:
                tasks.start_soon(shut_down)
                try:
                    with anyio.fail_after(30):
                        while not entered.exists():
                            await anyio.sleep(0.05)
                    refused = await client.post(other.url + f"api/kernels/{kernel_id}/restart")
                finally:
                    release.touch()
            assert [response.status_code for response in deleted] == [204]

        # What the owner answers a local restart of a kernel shutting down.
        assert refused.status_code == 409, refused.text
        assert refused.json() == {
            "message": f"Kernel {kernel_id} is shutting down",
            "reason": "Conflict",
        }
        assert f"kernel {kernel_id}: restart 1 refused: " in owner.log()
        assert "restarting it, as another server asked" not in owner.log()
    finally:
        other.stop()
        owner.stop()
        if group is not None:
            kill_group(group)
        with contextlib.suppress(OSError):
            release.touch()


async def test_a_refusal_is_recorded_with_its_reason_and_cleared_by_a_restart(
    database_url: str,
) -> None:
    database = Database(database_url)
    try:
        await upgrade(database, [("kernels", TABLES)])
        sealer = Sealer(b"cookie secret")
        owner, other = KernelRecords(database, sealer), KernelRecords(database, sealer)
        other.server = "elsewhere:1:other"
        await owner.save(record("k1", "key"))
        fresh = await other.restart_progress("k1")
        assert fresh is not None
        assert fresh.refused is None

        assert await other.request_restart("k1") == 1
        await owner.mark_restarted("k1", 1, "busy", refused="Kernel k1 is shutting down")
        progress = await other.restart_progress("k1")
        assert progress is not None
        assert (progress.restarted, progress.execution_state) == (1, "busy")
        assert progress.refused == "Kernel k1 is shutting down"
        assert progress.refusal(1) == "Kernel k1 is shutting down"
        assert await owner.restart_requests() == {}
        await owner.save(record("k1", "key"))  # a heartbeat's save leaves the answer
        assert (await other.restart_progress("k1")).refused is not None  # type: ignore[union-attr]

        assert await other.request_restart("k1") == 2
        await owner.mark_restarted("k1", 2, "idle")
        done = await other.restart_progress("k1")
        assert done is not None
        assert (done.restarted, done.refused) == (2, None)

        # Request 3 is carried out, 4 refused: the asker of 3, reading the row only after
        # 4's answer, learns that its own restart was done.
        assert await other.request_restart("k1") == 3
        await owner.mark_restarted("k1", 3, "idle")
        assert await other.request_restart("k1") == 4
        await owner.mark_restarted("k1", 4, "idle", refused="Kernel k1 is shutting down")
        answered = await other.restart_progress("k1")
        assert answered is not None
        assert answered.refusal(3) is None
        assert answered.refusal(4) == "Kernel k1 is shutting down"
    finally:
        await database.close()
