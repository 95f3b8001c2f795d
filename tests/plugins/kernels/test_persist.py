"""Kernels that outlive the server: records in the database, reattached after a restart.

Real servers (``junction`` subprocesses) on the test's own SQLite database, real ipykernel
kernels, the kernel WebSocket; the database row is read directly to check the key is sealed.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import sqlite3
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import anyio
import httpx
import pytest
import websockets

from junction.plugins.kernels.records import pid_alive
from junction.testing import TEST_TOKEN, ServerProcess, execute_request

AUTH = {"Authorization": f"token {TEST_TOKEN}"}

pytestmark = [pytest.mark.e2e, pytest.mark.anyio]


def start_server(
    root: Path, name: str, *settings: str, database_url: str | None = None
) -> ServerProcess:
    """A ``kernels`` profile server on ``root`` with ``--set`` ``settings``."""
    args = ["--port", "0", "--ip", "127.0.0.1", "--profile", "kernels", "--root-dir", str(root)]
    for setting in ("kernels.keep_on_shutdown=true", *settings):
        args += ["--set", setting]
    if database_url is not None:
        args += ["--set", f"database_url={database_url}"]
    return ServerProcess(args, log_path=root / f"{name}.log").start()


def start_kernel(server: ServerProcess) -> str:
    """Start a kernel through the API; its id."""
    response = httpx.post(server.url + "api/kernels", headers=AUTH, json={}, timeout=60)
    assert response.status_code == 201, response.text
    return str(response.json()["id"])


def kernel_ids(server: ServerProcess) -> list[str]:
    """The ids ``GET /api/kernels`` lists."""
    response = httpx.get(server.url + "api/kernels", headers=AUTH, timeout=30)
    assert response.status_code == 200, response.text
    return [kernel["id"] for kernel in response.json()]


async def run(
    server: ServerProcess, kernel_id: str, code: str, *, interrupt: bool = False
) -> dict[str, Any]:
    """Execute ``code`` over the kernel WebSocket (JSON protocol); the reply content, with
    the ``text/plain`` result (if any) under ``"result"``. ``interrupt``: interrupt it
    through ``server``'s API once it runs."""
    url = server.url.replace("http://", "ws://", 1) + f"api/kernels/{kernel_id}/channels"
    msg_id, request = execute_request(code, store_history=True)
    result: str | None = None
    reply: dict[str, Any] | None = None
    idle = False
    async with websockets.connect(
        url + f"?session_id={uuid.uuid4().hex}", additional_headers=AUTH, max_size=None
    ) as ws:
        await ws.send(json.dumps(request))
        with anyio.fail_after(60):
            # The reply (shell) and the outputs (iopub) come on different channels, in no
            # set order: done once both the reply and the idle status came.
            while reply is None or not idle:
                message = json.loads(await ws.recv())
                if message["parent_header"].get("msg_id") != msg_id:
                    continue
                kind = message["header"]["msg_type"]
                if interrupt and kind == "execute_input":
                    interrupt = False
                    async with httpx.AsyncClient(headers=AUTH, timeout=30) as client:
                        response = await client.post(
                            server.url + f"api/kernels/{kernel_id}/interrupt"
                        )
                    assert response.status_code == 204, response.text
                if kind == "execute_result":
                    result = message["content"]["data"]["text/plain"]
                elif kind == "execute_reply":
                    reply = message["content"]
                elif kind == "status":
                    idle = message["content"]["execution_state"] == "idle"
    return {**reply, "result": result}


def wait_for(condition: Callable[[], bool], timeout: float = 30) -> None:
    """Poll ``condition`` until true; fail after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "condition not reached in time"
        time.sleep(0.05)


def sqlite_rows(data_dir: Path) -> list[dict[str, Any]]:
    """Every row of ``kernels_kernels`` in the default SQLite database, read directly."""
    connection = sqlite3.connect(data_dir / "junction" / "junction.db")
    try:
        connection.row_factory = sqlite3.Row
        return [dict(row) for row in connection.execute("SELECT * FROM kernels_kernels")]
    finally:
        connection.close()


def process_of(row: dict[str, Any]) -> tuple[int, int]:
    """``(pid, pgid)`` of a row's kernel."""
    info = json.loads(row["provisioner"])
    return int(info["pid"]), int(info["pgid"])


def kill_group(pgid: int) -> None:
    """SIGKILL a kernel's process group, if it still runs."""
    with contextlib.suppress(ProcessLookupError):
        os.killpg(pgid, signal.SIGKILL)


def reaper_of(server_pid: int) -> int:
    """The pid of a server's reaper process (its child running ``reaper.py``)."""
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            stat = Path(f"/proc/{entry}/stat").read_bytes().rpartition(b")")[2].split()
            cmdline = Path(f"/proc/{entry}/cmdline").read_bytes()
        except OSError:
            continue
        if int(stat[1]) == server_pid and b"reaper.py" in cmdline:
            return int(entry)
    raise AssertionError("the server has no reaper process")


async def test_kernels_survive_sigkill_and_restarts_and_dead_ones_are_forgotten(
    tmp_path: Path, jupyter_data_dir: Path
) -> None:
    groups: list[int] = []
    first = start_server(tmp_path, "first", "kernels.orphan_grace=60")
    try:
        session = httpx.post(
            first.url + "api/sessions",
            headers=AUTH,
            json={"path": "a.ipynb", "type": "notebook", "kernel": {"name": "python3"}},
            timeout=60,
        )
        assert session.status_code == 201, session.text
        session_id = session.json()["id"]
        kept = session.json()["kernel"]["id"]
        doomed = start_kernel(first)
        assert (await run(first, kept, "x = 41"))["status"] == "ok"

        rows = {row["id"]: row for row in sqlite_rows(jupyter_data_dir)}
        assert set(rows) == {kept, doomed}
        connection_file = jupyter_data_dir / "runtime" / f"kernel-{kept}.json"
        key = json.loads(connection_file.read_text())["key"]
        assert len(key) >= 16
        for row in rows.values():
            assert all(key not in str(value) for value in row.values())
            assert row["sealed_key"]
        kept_pid, kept_group = process_of(rows[kept])
        doomed_pid, doomed_group = process_of(rows[doomed])
        groups += [kept_group, doomed_group]
        reaper = reaper_of(first.pid)
    finally:
        first.stop(signal.SIGKILL)

    # Crashed: the reaper waits for a claim (orphan_grace) instead of killing the kernels.
    assert pid_alive(reaper)
    assert pid_alive(kept_pid)
    assert pid_alive(doomed_pid)
    second = start_server(tmp_path, "second")
    try:
        assert sorted(kernel_ids(second)) == sorted([kept, doomed])
        wait_for(lambda: not pid_alive(reaper))  # both claimed: it lets go, killing nothing
        assert pid_alive(kept_pid)
        assert pid_alive(doomed_pid)
        reply = await run(second, kept, "x + 1")
        assert reply["result"] == "42", reply
        interrupted = await run(second, kept, "import time; time.sleep(60)", interrupt=True)
        assert interrupted["ename"] == "KeyboardInterrupt"
    finally:
        assert second.stop() == 0

    # Stopped gracefully: both left running; one dies while no server is up.
    assert pid_alive(kept_pid)
    kill_group(doomed_group)
    wait_for(lambda: not pid_alive(doomed_pid))
    third = start_server(tmp_path, "third")
    try:
        assert kernel_ids(third) == [kept]
        assert [row["id"] for row in sqlite_rows(jupyter_data_dir)] == [kept]
        sessions = httpx.get(third.url + "api/sessions", headers=AUTH, timeout=30).json()
        assert [(s["id"], s["kernel"]["id"]) for s in sessions] == [(session_id, kept)]
        assert (await run(third, kept, "x"))["result"] == "41"

        deleted = httpx.delete(third.url + f"api/kernels/{kept}", headers=AUTH, timeout=30)
        assert deleted.status_code == 204
        wait_for(lambda: not pid_alive(kept_pid))
        assert sqlite_rows(jupyter_data_dir) == []
    finally:
        third.stop()
        for group in groups:
            kill_group(group)
