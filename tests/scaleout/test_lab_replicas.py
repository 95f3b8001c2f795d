"""JupyterLab in a real chromium keeps its notebook's kernel across the crash of a replica.

Three real ``multiuser`` replicas on one real PostgreSQL behind real nginx (the configuration
``junction deploy nginx --replicas`` writes), kernels kept across crashes
(:data:`~tests.scaleout.replicas.KEEP_KERNELS`). The flow (``lab_replicas_flow.mjs``, Debian's
chromium driven by playwright-core with ``tests/browser/lib.mjs``) opens ``/lab?token=...``
through nginx, creates a notebook from the launcher and runs ``x = 6*7; print(x)``. Then it
prints a ``kill`` line and waits on its stdin: the test looks up the replica that runs the
kernel (the kernel's record in PostgreSQL) and ``kill -9``s it, and the replica the page's
kernel WebSocket is on too when that is another one (nginx spreads WebSockets round robin), so
that the page always has to reconnect, to a replica it never left (a replica the page left
within ``kernels.reconnect_window`` replays to it, on its return, the messages it got from
other replicas meanwhile); then it answers ``killed``. In the same page the flow
waits (bounded) for JupyterLab's new kernel WebSocket and the idle status, runs
``print(x + 1)`` and must see 43 (same kernel, same variables, adopted by a replica still
running), saves with Ctrl+S (``PUT /api/contents`` answered 200) and reads the outputs back
through the REST API.

The replicas run without the collaboration plugin: with it, a notebook's room lives on one
replica, and when that replica is the one killed the room is refused (4503) until its lease
expires (``docs/scale-out.md``), which is another subject than the kernel's. Without it
JupyterLab talks to the kernel over its own WebSocket and saves with ``PUT``.

Console errors the kill causes are listed in :data:`KILL_ERRORS`; any other one fails the test,
as does any HTTP status >= 400 the browser saw. Artifacts (the summary, a screenshot on
failure, the replicas' and nginx's logs on failure) go to ``test-artifacts/``.
"""

from __future__ import annotations

import contextlib
import json
import os
import queue
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from functools import partial
from pathlib import Path
from typing import Any

import pytest

from .replicas import KEEP_KERNELS, Replica, ReplicaSet, replica_set_running, wait_until

sys.path.insert(0, str(Path(__file__).parents[1] / "browser"))

from helpers import ARTIFACTS, CHROMIUM, Run, check_tools, describe

pytestmark = pytest.mark.browser

FLOW = Path(__file__).parent / "lab_replicas_flow.mjs"
FLOW_TIMEOUT = 90.0

KILL_ERRORS: tuple[str, ...] = ()
"""Console errors the kill -9 causes, matched by substring: none. JupyterLab logs nothing when
its kernel WebSocket drops (it shows "Connecting" and reconnects), and nginx retries the
requests that find a killed replica's port closed on a running one."""


COLLABORATION_FRONTEND = ["@jupyter/collaboration-extension"]


class Flow:
    """The node flow: its stdout lines in a queue, a line written to its stdin on request."""

    def __init__(self, env: dict[str, str]) -> None:
        self.stderr_path = ARTIFACTS / "lab-replicas-flow.stderr"
        self._stderr = self.stderr_path.open("w")
        self.process = subprocess.Popen(
            ["node", str(FLOW)],
            cwd=FLOW.parent,
            env=env,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=self._stderr,
            text=True,
        )
        self.lines: queue.Queue[str | None] = queue.Queue()
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            self.lines.put(line)
        self.lines.put(None)

    def next_json(self, deadline: float) -> dict[str, Any] | None:
        """The next JSON line the flow prints; None once it ended."""
        while True:
            try:
                line = self.lines.get(timeout=max(deadline - time.monotonic(), 0.01))
            except queue.Empty:
                raise AssertionError(f"the flow printed nothing in time; {self.tail()}") from None
            if line is None:
                return None
            if line.startswith("{"):
                message: dict[str, Any] = json.loads(line)
                return message

    def answer(self, line: str) -> None:
        """Write ``line`` to the flow's stdin."""
        assert self.process.stdin is not None
        self.process.stdin.write(line + "\n")
        self.process.stdin.flush()

    def tail(self) -> str:
        """The flow's stderr, for failure messages."""
        return "flow stderr:\n" + self.stderr_path.read_text(errors="replace")[-3000:]

    def close(self) -> None:
        """End the flow (closing its stdin ends its wait) and the reader."""
        with contextlib.suppress(OSError, ValueError):
            assert self.process.stdin is not None
            self.process.stdin.close()
        try:
            self.process.wait(20)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        self._reader.join(10)
        if self.process.stdout is not None:
            self.process.stdout.close()
        self._stderr.close()


def attached_replica(replica_set: ReplicaSet, kernel_id: str) -> Replica:
    """The one replica the kernel's WebSockets are attached to, asking each replica itself."""

    def single() -> Replica | None:
        attached = replica_set.connections(kernel_id)
        return replica_set.replicas[next(iter(attached))] if len(attached) == 1 else None

    return wait_until(single, timeout=15, what=f"the WebSocket of kernel {kernel_id}")


def logs(replica_set: ReplicaSet) -> str:
    """The replicas' and nginx's logs (the part about kernels and WebSockets), for failures."""
    parts = []
    for replica in replica_set.replicas:
        parts.append(f"--- replica {replica.index} ({replica.address}) ---\n{replica.log()}")
    parts.append(f"--- nginx access log ---\n{replica_set.access_log()}")
    return "\n".join(parts)


@pytest.fixture(scope="module")
def lab_set(request: pytest.FixtureRequest) -> Iterator[ReplicaSet]:
    """Three ``multiuser`` replicas without collaboration that keep kernels, behind nginx."""
    check_tools(modules=())
    postgres = request.config.pluginmanager.get_plugin("conftest_pg")
    assert postgres is not None, "tests/conftest.py must load the conftest_pg plugin"
    # Without the collaboration plugin, its front end (installed with jupyter-collaboration)
    # would call /api/collaboration: switched off too.
    extra = [
        *KEEP_KERNELS,
        "--set",
        "disable=collaboration",
        "--set",
        f"frontend.disabled_extensions={json.dumps(COLLABORATION_FRONTEND)}",
    ]
    with replica_set_running(
        postgres.PostgresCluster, 3, profile="multiuser", extra_args=extra
    ) as running:
        try:
            yield running
        finally:
            running.shutdown_kernels()


def test_jupyterlab_keeps_its_kernel_when_the_kernels_replica_is_killed(
    lab_set: ReplicaSet,
) -> None:
    ARTIFACTS.mkdir(exist_ok=True)
    env = {
        **os.environ,
        "JUNCTION_URL": lab_set.nginx_url,
        "JUNCTION_TOKEN": lab_set.token,
        "ARTIFACTS_DIR": str(ARTIFACTS),
        "CHROMIUM": str(CHROMIUM),
        "STEP_TIMEOUT_MS": "30000",
        "RECONNECT_TIMEOUT_MS": "40000",
    }
    try:
        summary, launcher, adopter, adopted = drive(lab_set, env)
        check(summary, launcher, adopter, adopted)
    except BaseException:
        (ARTIFACTS / "lab-replicas-logs.txt").write_text(logs(lab_set))
        raise


def drive(
    lab_set: ReplicaSet, env: dict[str, str]
) -> tuple[dict[str, Any], Replica | None, Replica | None, float]:
    """Run the flow and kill the kernel's replicas when it asks; its summary, the replica
    that launched the kernel, the one that adopted it and how long that took."""
    deadline = time.monotonic() + FLOW_TIMEOUT
    flow = Flow(env)
    launcher: Replica | None = None
    adopter: Replica | None = None
    adopted = killed = 0.0
    try:
        message = flow.next_json(deadline)
        if message is not None and message.get("event") == "kill":
            kernel_id = message["kernel_id"]
            server = lab_set.kernel_server(kernel_id)
            assert server is not None, f"kernel {kernel_id} has no record"
            launcher = lab_set.replica_of(server)
            attached = attached_replica(lab_set, kernel_id)
            print(f"kernel on replica {launcher.index}, its WebSocket on {attached.index}")
            killed = time.monotonic()
            launcher.kill()
            if attached is not launcher:
                attached.kill()  # so that the page has to reconnect
            flow.answer("killed")
            adopter = wait_until(
                partial(lab_set.adopter_of, kernel_id, launcher),
                timeout=30,
                what=f"kernel {kernel_id} to be adopted",
            )
            adopted = time.monotonic() - killed
            message = flow.next_json(deadline)
        summary = message  # after the kill, or before it if the flow failed
        assert summary is not None, f"the flow printed no summary; {flow.tail()}"
    finally:
        flow.close()
    return summary, launcher, adopter, adopted


def check(
    summary: dict[str, Any], launcher: Replica | None, adopter: Replica | None, adopted: float
) -> None:
    """What the flow and the kill must have done."""
    run = Run(summary=summary, server_log="")
    console = [e for e in summary["console"] if not any(k in e for k in KILL_ERRORS)]
    print(f"kernel adopted {adopted:.3f} s after the kill; sockets {summary['sockets']}")
    print(f"console errors: {summary['console']}; steps: {summary['steps']}")
    assert summary["error"] is None, describe(run)
    assert summary["bad"] == [], describe(run)
    assert console == [], describe(run)
    assert launcher is not None
    assert adopter is not None
    assert adopter is not launcher
    names = [step["name"] for step in summary["steps"]]
    assert "run print(x + 1) in the same page and see 43" in names
    assert "the saved outputs are in the file (REST API)" in names
    # The page's kernel socket on the killed replica closed; a new one attached elsewhere.
    sockets = summary["sockets"]
    assert any(s["closed"] is not None and s["opened"] < summary["killed_at"] for s in sockets)
    assert any(s["opened"] >= summary["killed_at"] for s in sockets)
