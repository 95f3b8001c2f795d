"""A notebook's kernel outlives the replica that runs it: a crash and a rolling restart.

Three real ``multiuser`` replicas on one real PostgreSQL behind real nginx (the configuration
``junction deploy nginx --replicas`` writes), kernels kept across stops
(``kernels.keep_on_shutdown``, :data:`KEEP_KERNELS`), and a real notebook client:
``@jupyterlab/services`` under Node (``node/driver.mjs``), which reconnects its kernel
WebSocket on its own when a replica goes. Every request it makes carries an ``X-Request-ID``,
so nginx's access log tells which replica served it; each replica's own
``GET /api/kernels/{id}`` tells whether the kernel's WebSocket is attached there; the kernel's
record in PostgreSQL names the replica that runs it.
"""

from __future__ import annotations

import contextlib
import itertools
import json
import os
import re
import signal
import subprocess
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from functools import partial
from pathlib import Path
from typing import Any

import pytest
from tests.clients.node_client import ensure_node_project

from .replicas import KEEP_KERNELS, Replica, ReplicaSet, replica_set_running, wait_until

pytestmark = pytest.mark.e2e

DRIVER = Path(__file__).parent / "node" / "driver.mjs"

LOSS_WINDOW_SECONDS = 3.0
"""Most output (in seconds of the kernel's clock) a client may miss when the replica its
WebSocket is on stops: the client's reconnect, since the replica it reconnects to already runs
(docs/kernels.md and docs/scale-out.md, "What is lost")."""

RETRY_WINDOW_SECONDS = 35.0
"""The same when the client's first reconnect fails (a 503 while another replica still takes
the kernel over): @jupyterlab/services asks again only 10-30 s later. At most one stop of the
three may take that long."""


class Driver:
    """The Node client: one command a line in, one JSON answer or event a line out."""

    def __init__(self, node: str, replica_set: ReplicaSet, tag: str, log_path: Path) -> None:
        env = {
            **os.environ,
            "JUNCTION_URL": replica_set.nginx_url,
            "JUNCTION_TOKEN": replica_set.token,
            "JUNCTION_TAG": tag,
        }
        self.tag = tag
        self.log_path = log_path
        self._stderr = log_path.open("w")
        self.process = subprocess.Popen(
            [node, str(DRIVER)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=self._stderr,
            env=env,
            text=True,
        )
        self._lock = threading.Condition()
        self._answers: dict[str, dict[str, Any]] = {}
        self.events: list[dict[str, Any]] = []
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()
        self.wait_event(lambda event: event.get("event") == "ready", 30, "the client to start")

    def _read(self) -> None:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            try:
                message = json.loads(line)
            except ValueError:
                continue
            with self._lock:
                if "id" in message:
                    self._answers[message["id"]] = message
                else:
                    message["received"] = time.monotonic()
                    self.events.append(message)
                self._lock.notify_all()
        with self._lock:
            self._lock.notify_all()

    def call(self, op: str, timeout: float = 30.0, **args: Any) -> dict[str, Any]:
        """Run ``op`` in the client; its result, or AssertionError naming its error."""
        command_id = uuid.uuid4().hex
        assert self.process.stdin is not None
        self.process.stdin.write(json.dumps({"id": command_id, "op": op, **args}) + "\n")
        self.process.stdin.flush()
        deadline = time.monotonic() + timeout
        with self._lock:
            while command_id not in self._answers:
                left = deadline - time.monotonic()
                if left <= 0 or self.process.poll() is not None:
                    raise AssertionError(f"client op {op} got no answer; {self.tail()}")
                self._lock.wait(min(left, 0.5))
            answer = self._answers.pop(command_id)
        assert answer["ok"], f"client op {op} failed: {answer['error']}; {self.tail()}"
        result: dict[str, Any] = answer["result"]
        return result

    def wait_event(
        self, match: Callable[[dict[str, Any]], bool], timeout: float, what: str, start: int = 0
    ) -> dict[str, Any]:
        """The first event from index ``start`` on that ``match`` accepts; waits for it."""
        deadline = time.monotonic() + timeout
        with self._lock:
            while True:
                for event in self.events[start:]:
                    if match(event):
                        return event
                left = deadline - time.monotonic()
                if left <= 0 or self.process.poll() is not None:
                    raise AssertionError(f"timed out waiting for {what}; {self.tail()}")
                self._lock.wait(min(left, 0.5))

    def events_of(self, kind: str) -> list[dict[str, Any]]:
        """The events of one kind so far."""
        with self._lock:
            return [event for event in self.events if event.get("event") == kind]

    def mark(self) -> int:
        """An index into the events, for :meth:`wait_event` to look after."""
        with self._lock:
            return len(self.events)

    def tail(self) -> str:
        """The latest events and the client's stderr, for failure messages."""
        with self._lock:
            events = self.events[-15:]
        stderr = self.log_path.read_text(errors="replace")[-2000:]
        return f"last events: {events}\nclient stderr:\n{stderr}"

    def close(self) -> None:
        """End the client (closing its stdin ends it) and its reader."""
        with contextlib.suppress(OSError, ValueError):
            assert self.process.stdin is not None
            self.process.stdin.close()
        try:
            self.process.wait(10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        self._reader.join(10)
        if self.process.stdout is not None:
            self.process.stdout.close()
        self._stderr.close()


@pytest.fixture(scope="module")
def kept_set(request: pytest.FixtureRequest) -> Iterator[ReplicaSet]:
    """Three ``multiuser`` replicas that keep kernels across stops, behind nginx."""
    postgres = request.config.pluginmanager.get_plugin("conftest_pg")
    assert postgres is not None, "tests/conftest.py must load the conftest_pg plugin"
    with replica_set_running(
        postgres.PostgresCluster, 3, profile="multiuser", extra_args=KEEP_KERNELS
    ) as running:
        try:
            yield running
        finally:
            running.shutdown_kernels()


@pytest.fixture
def kernel_pids() -> Iterator[list[int]]:
    """Kernel processes a test learnt of; killed at its end if still running (kept kernels
    outlive every replica)."""
    pids: list[int] = []
    yield pids
    for pid in pids:
        with contextlib.suppress(OSError):
            os.killpg(pid, signal.SIGKILL)


class Starts:
    """Replicas starting again in the background, one at a time; :meth:`wait` raises what a
    start raised."""

    def __init__(self) -> None:
        self._pool = ThreadPoolExecutor(1)
        self._pending: list[Future[None]] = []

    def submit(self, replica: Replica) -> None:
        """Start ``replica`` again after the starts submitted before."""
        self._pending.append(self._pool.submit(replica.start))

    def wait(self) -> None:
        """Wait until every submitted start is done."""
        pending, self._pending = self._pending, []
        for start in pending:
            start.result()

    def close(self) -> None:
        """Wait for the starts under way, then end the worker."""
        try:
            self.wait()
        finally:
            self._pool.shutdown()


@pytest.fixture(scope="module")
def starts(kept_set: ReplicaSet) -> Iterator[Starts]:
    """Background starts of the module's replicas, all done before the set closes."""
    running = Starts()
    try:
        yield running
    finally:
        running.close()


@pytest.fixture
def driver(kept_set: ReplicaSet, starts: Starts, tmp_path: Path) -> Iterator[Driver]:
    """The Node client on nginx, every replica running first."""
    starts.wait()
    for replica in kept_set.replicas:
        if not replica.alive():
            replica.start()
    node = ensure_node_project()
    client = Driver(node, kept_set, f"c{uuid.uuid4().hex[:8]}", tmp_path / "client.log")
    try:
        yield client
    finally:
        client.close()


def kernels_of(listed: dict[str, Any], path: str) -> list[str]:
    """The kernels of the sessions of ``path`` in the client's ``sessions`` answer."""
    return [session["kernel_id"] for session in listed["sessions"] if session["path"] == path]


def attached_replica(replica_set: ReplicaSet, kernel_id: str) -> Replica:
    """The one replica the kernel's WebSocket is attached to, asking each replica itself."""

    def single() -> Replica | None:
        attached = replica_set.connections(kernel_id)
        if list(attached.values()) != [1]:  # exactly one WebSocket in all
            return None
        return replica_set.replicas[next(iter(attached))]

    return wait_until(single, timeout=15, what=f"one WebSocket of kernel {kernel_id}")


def owner(replica_set: ReplicaSet, kernel_id: str) -> Replica:
    """The replica that runs the kernel, as its record says."""
    server = replica_set.kernel_server(kernel_id)
    assert server is not None, f"kernel {kernel_id} has no record"
    return replica_set.replica_of(server)


def upstreams(replica_set: ReplicaSet, prefix: str) -> set[str]:
    """The replicas nginx sent the requests whose X-Request-ID starts with ``prefix`` to."""
    pattern = re.compile(rf"id={re.escape(prefix)}\S* upstream=(\S+?) upstream_status=")
    return {match.group(1).split(", ")[-1] for match in pattern.finditer(replica_set.access_log())}


def stop_under(
    driver: Driver,
    replica_set: ReplicaSet,
    kernel_id: str,
    replica: Replica,
    printed: Callable[[dict[str, Any]], bool],
) -> float:
    """Stop ``replica`` (gracefully) under the client; returns how long the client was away.

    The client's WebSocket must be on ``replica``; it reconnects through nginx to another one,
    and the kernel's output (``printed``) reaches it again.
    """
    mark = driver.mark()
    replica.stop()  # SIGTERM: the kernel is kept
    closed = driver.wait_event(
        lambda e: e.get("event") == "ws_close", 20, "the WebSocket to close", mark
    )
    # 1012 (service restart) for a kernel that stays: the client reconnects, as after a
    # drop; a 1000 or 1001 would leave @jupyterlab/services disconnected for good.
    assert closed["code"] == 1012, closed
    driver.call("wait_connected", timeout=40, timeout_ms=35000)
    back = driver.wait_event(
        lambda e: e.get("event") == "connection" and e["status"] == "connected",
        5,
        "the client to be connected again",
        mark,
    )
    again = driver.mark()
    driver.wait_event(printed, 20, f"the counter after replica {replica.index} stopped", again)
    # The kernel runs on one of the others now (adopted if the stopped one ran it).
    server = wait_until(
        partial(replica_set.server_other_than, kernel_id, replica),
        timeout=20,
        what=f"kernel {kernel_id} to run on a running replica",
    )
    assert replica_set.replica_of(server) is not replica
    return float(back["received"] - closed["received"])


COUNTER_CELL = """\
n = 0
while True:
    n += 1
    print(f"{n} {time.time()}", flush=True)
    time.sleep(0.1)
"""


def test_a_rolling_restart_loses_no_kernel(
    kept_set: ReplicaSet, starts: Starts, driver: Driver, kernel_pids: list[int]
) -> None:
    started = driver.call("session", path=f"rolling-{driver.tag}.ipynb", timeout=60)
    kernel_id = started["kernel_id"]
    first = driver.call("execute", code="import os, time\nprint(os.getpid())")
    assert first["status"] == "ok", first
    pid = int(first["stdout"])
    kernel_pids.append(pid)
    mark = driver.mark()
    counting = driver.call("submit", code=COUNTER_CELL)["msg_id"]

    def printed(event: dict[str, Any]) -> bool:
        return event.get("event") == "stdout" and event["msg_id"] == counting

    driver.wait_event(printed, 20, "the counter to print", mark)

    away: list[float] = []
    for replica in kept_set.replicas:
        # The client's WebSocket moves to the replica about to stop (while the one before
        # starts again), so the stop cuts it.
        for _ in range(8):
            if attached_replica(kept_set, kernel_id) is replica:
                break
            driver.call("connect")
        assert attached_replica(kept_set, kernel_id) is replica
        starts.wait()  # one replica down at a time
        away.append(stop_under(driver, kept_set, kernel_id, replica, printed))
        starts.submit(replica)
    # The last one comes back while the test goes on (the next test's client waits for it).

    # Stop the counter through nginx (interrupt_request on control, from any replica).
    with kept_set.client() as client:
        interrupted = client.post(f"api/kernels/{kernel_id}/interrupt")
        assert interrupted.status_code == 204, interrupted.text
    after = driver.call("execute", code="print(n, os.getpid())", timeout=40, timeout_ms=35000)
    assert after["status"] == "ok", f"{after}\n{driver.tail()}"
    last, kernel_pid = (int(word) for word in after["stdout"].split())
    assert kernel_pid == pid
    assert driver.call("status")["kernel_id"] == kernel_id

    # What the client received: the counter with the kernel's clock. Gaps are the output
    # printed while the client was between two replicas.
    # A stream message may end mid-line: join them, and count a line cut by a lost message
    # as lost too.
    text = "".join(e["text"] for e in driver.events_of("stdout") if e["msg_id"] == counting)
    received = {
        int(match.group(1)): float(match.group(2))
        for match in re.finditer(r"^(\d+) (\d+\.\d+)$", text, re.MULTILINE)
    }
    numbers = sorted(received)
    assert numbers[-1] <= last
    gaps = [
        (before, after_, received[after_] - received[before])
        for before, after_ in itertools.pairwise(numbers)
        if after_ - before > 1
    ]
    # Each stop cost the client one reconnect; output printed meanwhile is lost, within the
    # window (at most one gap per WebSocket the client left, the three stops included).
    slow = [seconds for seconds in away if seconds > LOSS_WINDOW_SECONDS]
    assert len(slow) <= 1, (away, driver.tail())
    assert all(s <= RETRY_WINDOW_SECONDS for s in slow), (away, driver.tail())
    window = max([LOSS_WINDOW_SECONDS, *slow])
    assert all(seconds <= window for _, _, seconds in gaps), (gaps, away)
    sockets = {e["request_id"] for e in driver.events_of("ws_open")}
    assert len(gaps) < len(sockets), (gaps, sockets)
    replied = [e for e in driver.events_of("reply") if e["msg_id"] == counting]
    print(f"away per stop: {away}; counter gaps (before, after, seconds): {gaps}; {replied=}")
    listed = driver.call("sessions")
    assert kernels_of(listed, started["path"]) == [kernel_id]
    driver.call("close", timeout=60)


def test_a_kernel_survives_the_crash_of_its_replica(
    kept_set: ReplicaSet, driver: Driver, kernel_pids: list[int]
) -> None:
    started = driver.call("session", path=f"failover-{driver.tag}.ipynb", timeout=60)
    kernel_id = started["kernel_id"]
    first = driver.call("execute", code="import os, time\nx = 0\nseen = []\nprint(os.getpid())")
    assert first["status"] == "ok", first
    pid = int(first["stdout"])
    kernel_pids.append(pid)
    launcher = owner(kept_set, kernel_id)

    # The WebSocket through nginx lands on each replica in turn (round robin): the cells run
    # through every one of them, ending on the replica that launched the kernel.
    landed: list[int] = []
    for _ in range(12):
        driver.call("connect")
        here = attached_replica(kept_set, kernel_id)
        ran = driver.call("execute", code=f"x += 1\nseen.append({here.index})\nprint(x)")
        assert ran["status"] == "ok", ran
        landed.append(here.index)
        if len(set(landed)) == 3 and here is launcher:
            break
    assert set(landed) == {0, 1, 2}, landed
    assert attached_replica(kept_set, kernel_id) is launcher
    listed = driver.call("sessions")
    assert kernels_of(listed, started["path"]) == [kernel_id]
    # The client's REST requests went round robin too (nginx's access log).
    addresses = {replica.address for replica in kept_set.replicas}
    assert upstreams(kept_set, f"{driver.tag}-http-") == addresses

    # kill -9 the launcher while a cell runs; the client reconnects through nginx.
    mark = driver.mark()
    running = driver.call(
        "submit",
        code="for i in range(30):\n    print(i, flush=True)\n    time.sleep(0.1)\n"
        "survived = 'the cell ran to its end'",
    )
    driver.wait_event(
        lambda e: e.get("event") == "stdout" and e["msg_id"] == running["msg_id"],
        20,
        "the cell to print",
        mark,
    )
    mark = driver.mark()
    killed = time.monotonic()
    kept_set.kill(launcher.index)
    cut = driver.wait_event(
        lambda e: e.get("event") == "ws_close", 20, "the WebSocket to close", mark
    )
    assert cut["code"] not in (1000, 1001), cut  # else @jupyterlab/services would not reconnect
    # Adopted by one of the others (its pid is gone: at the next heartbeat, a second).
    adopter = wait_until(
        partial(kept_set.adopter_of, kernel_id, launcher),
        timeout=30,
        what=f"kernel {kernel_id} to be adopted",
    )
    assert adopter is not launcher
    adopted = time.monotonic() - killed
    driver.call("wait_connected", timeout=40, timeout_ms=35000)
    back = driver.wait_event(
        lambda e: e.get("event") == "connection" and e["status"] == "connected",
        5,
        "the client to be connected again",
        mark,
    )
    print(
        f"after the kill: reconnected in {back['received'] - killed:.3f} s, "
        f"adopted in {adopted:.3f} s"
    )
    after = driver.call(
        "execute", code="print(x, seen, survived, os.getpid())", timeout=40, timeout_ms=35000
    )
    assert after["status"] == "ok", f"{after}\n{driver.tail()}"
    assert after["stdout"].split("[")[0].strip() == str(len(landed))
    assert after["stdout"].endswith(f"] the cell ran to its end {pid}\n"), after
    # The running cell's output went on reaching the client after the reconnect (its reply
    # went to the dead replica's socket: lost, as docs/kernels.md says).
    driver.wait_event(
        lambda e: (
            e.get("event") == "stdout"
            and e["msg_id"] == running["msg_id"]
            and e["text"].endswith("29\n")
        ),
        10,
        "the end of the cell that ran across the kill",
        mark,
    )

    # It goes on through both remaining replicas, with the same id and the same variables,
    # ending on the one that adopted it.
    others: set[int] = set()
    for _ in range(8):
        driver.call("connect")
        here = attached_replica(kept_set, kernel_id)
        ran = driver.call("execute", code=f"x += 1\nseen.append({here.index})\nprint(x)")
        assert ran["status"] == "ok", ran
        others.add(here.index)
        if len(others) == 2 and here is adopter:
            break
    assert others == {r.index for r in kept_set.replicas if r is not launcher}
    assert attached_replica(kept_set, kernel_id) is adopter

    # The adopter freezes past its lease: the last replica takes the kernel over; the adopter,
    # resumed, lets it go and closes the client's WebSocket with 1012, so that it reconnects.
    frozen = adopter.process.process
    assert frozen is not None
    mark = driver.mark()
    frozen.send_signal(signal.SIGSTOP)
    try:
        taker = wait_until(
            partial(kept_set.adopter_of, kernel_id, adopter),
            timeout=30,
            what=f"kernel {kernel_id} to be taken over",
        )
    finally:
        frozen.send_signal(signal.SIGCONT)
    let_go = driver.wait_event(
        lambda e: e.get("event") == "ws_close", 20, "the frozen replica to let go", mark
    )
    assert let_go["code"] == 1012, let_go
    driver.call("wait_connected", timeout=40, timeout_ms=35000)
    final = driver.call("execute", code="print(x == len(seen), os.getpid())", timeout=40)
    assert final["status"] == "ok", f"{final}\n{driver.tail()}"
    assert final["stdout"] == f"True {pid}\n", final
    assert f"kernel {kernel_id} was taken over by another server" in adopter.log()
    # The record names the taker from its claim on; it logs once the kernel answered it.
    wait_until(
        lambda: f"kernel {kernel_id} (python3) reattached" in taker.log(),
        timeout=15,
        what=f"replica {taker.index} to log the kernel reattached",
    )
    status = driver.call("status")
    assert status["kernel_id"] == kernel_id
    listed = driver.call("sessions")
    assert kernels_of(listed, started["path"]) == [kernel_id]
    assert kernel_id in listed["kernels"]
    assert f"kernel {kernel_id} (python3) reattached" in adopter.log()
    driver.call("close", timeout=60)
    # The kernel's WebSockets were served by every replica (logged by nginx once closed).
    assert wait_until(
        lambda: upstreams(kept_set, f"{driver.tag}-ws-") == addresses,
        timeout=10,
        what="every replica in the WebSockets' access log lines",
    )
