"""The core reaper: a stdlib-only process that kills tracked process groups when let go."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time

import psutil
import pytest

from junction import _reaper as reaper_module
from junction.reaper import Reaper, session_alive, session_groups


def _sleeper() -> subprocess.Popen[bytes]:
    """A ``sleep`` in its own session (its own process group), ignoring SIGHUP and SIGTERM."""
    return subprocess.Popen(
        ["sh", "-c", "trap '' HUP TERM; sleep 600 & wait"],
        start_new_session=True,
    )


def _wait_exit(process: subprocess.Popen[bytes], timeout: float) -> int:
    return process.wait(timeout)


def _wait_group_gone(pgid: int, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        alive = [
            p
            for p in psutil.process_iter(["pid"])
            if _pgid(p.pid) == pgid and p.status() != psutil.STATUS_ZOMBIE
        ]
        if not alive:
            return
        time.sleep(0.05)
    raise AssertionError(f"process group {pgid} still alive")


def _pgid(pid: int) -> int | None:
    try:
        return os.getpgid(pid)
    except OSError:
        return None


def test_reaper_starts_on_first_track_only() -> None:
    reaper = Reaper()
    assert not reaper.running
    reaper.untrack(12345)
    assert not reaper.running
    reaper.track(None)
    assert not reaper.running
    child = _sleeper()
    try:
        reaper.track(child.pid)
        assert reaper.running
    finally:
        reaper.untrack(child.pid)
        reaper.close()
        child.kill()
        child.wait()
    assert not reaper.running


def test_reaper_kills_tracked_groups_when_closed_even_if_they_ignore_sigterm() -> None:
    reaper = Reaper()
    child = _sleeper()
    try:
        reaper.track(child.pid)
        process = reaper._process
        assert process is not None
        reaper.close()
        assert _wait_exit(child, timeout=10) == -signal.SIGKILL
        assert process.wait(10) == 0
        _wait_group_gone(child.pid, timeout=10)
    finally:
        if child.poll() is None:
            child.kill()
            child.wait()


def test_reaper_spares_untracked_groups() -> None:
    reaper = Reaper()
    kept = _sleeper()
    try:
        reaper.track(kept.pid)
        reaper.untrack(kept.pid)
        process = reaper._process
        assert process is not None
        reaper.close()
        assert process.wait(10) == 0
        assert kept.poll() is None
    finally:
        kept.kill()
        kept.wait()


def test_reaper_kills_when_its_pipe_closes_because_the_server_died() -> None:
    """A parent killed with SIGKILL: its reaper sees EOF and kills the tracked group."""
    script = (
        "import subprocess, sys, time\n"
        "from junction.reaper import Reaper\n"
        "child = subprocess.Popen(['sh', '-c', 'sleep 600 & wait'], start_new_session=True)\n"
        "reaper = Reaper()\n"
        "reaper.track(child.pid)\n"
        "print(child.pid, reaper._process.pid, flush=True)\n"
        "time.sleep(600)\n"
    )
    with subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE) as parent:
        try:
            assert parent.stdout is not None
            child_pid, reaper_pid = map(int, parent.stdout.readline().split())
            tracked = psutil.Process(child_pid)
            reaper = psutil.Process(reaper_pid)
            assert reaper.status() != psutil.STATUS_ZOMBIE, "the reaper died at start"
            assert reaper.ppid() == parent.pid
            parent.send_signal(signal.SIGKILL)
            parent.wait(10)
            _, alive = psutil.wait_procs([tracked, reaper], timeout=10)
            assert not alive
            _wait_group_gone(child_pid, timeout=10)
        finally:
            parent.kill()


@pytest.mark.parametrize("line", [b"+1\n", b"+0\n", b"+x\n", b"garbage\n"])
def test_reaper_ignores_lines_that_name_no_group(line: bytes) -> None:
    reaper = subprocess.Popen(
        [sys.executable, "-I", "-S", reaper_module.__file__], stdin=subprocess.PIPE
    )
    reaper.communicate(line, timeout=10)
    assert reaper.returncode == 0


def test_session_groups_and_session_alive_see_every_group_of_a_session() -> None:
    job = "import os, time\nos.setpgid(0, 0)\nprint(os.getpgid(0), flush=True)\ntime.sleep(600)"
    with subprocess.Popen(
        ["sh", "-c", f'{sys.executable} -c "$0" & wait', job],
        start_new_session=True,
        stdout=subprocess.PIPE,
    ) as leader:
        try:
            assert leader.stdout is not None
            job_group = int(leader.stdout.readline())
            assert job_group != leader.pid
            assert session_groups(leader.pid) == {leader.pid, job_group}
            assert session_alive(leader.pid)
            for pgid in session_groups(leader.pid):
                os.killpg(pgid, signal.SIGKILL)
            deadline = time.monotonic() + 10
            while session_alive(leader.pid):  # the unreaped leader is a zombie: not counted
                assert time.monotonic() < deadline
                time.sleep(0.02)
        finally:
            leader.kill()


def test_a_session_with_no_process_has_only_its_own_group() -> None:
    process = subprocess.Popen(["true"], start_new_session=True)
    process.wait()
    assert session_groups(process.pid) == {process.pid}
    assert not session_alive(process.pid)


def test_a_number_reused_by_a_later_process_is_not_the_tracked_session() -> None:
    """The reaper checks a session leader's start time, so a reused pid is never killed."""
    with subprocess.Popen(["sleep", "600"], start_new_session=True) as leader:
        try:
            started = reaper_module._start_time(leader.pid)
            assert started is not None
            assert reaper_module._same_leader(leader.pid, started)
            assert not reaper_module._same_leader(leader.pid, b"1")
        finally:
            leader.kill()
    assert reaper_module._start_time(leader.pid) is None
    assert reaper_module._same_leader(leader.pid, b"1")  # gone: its group may live on


def test_the_reaper_process_imports_only_a_few_builtin_modules() -> None:
    """The reaper lives as long as the server: it must not pay for logging, subprocess or enum.

    ``-X importtime`` lists every module the process imports, through the kill path too.
    """
    child = subprocess.Popen(["sleep", "600"], start_new_session=True)
    waiter = threading.Thread(target=child.wait)  # no zombie keeps the group alive
    waiter.start()
    try:
        reaper = subprocess.run(
            [sys.executable, "-I", "-S", "-X", "importtime", reaper_module.__file__],
            input=f"+{child.pid}\n".encode(),
            capture_output=True,
            timeout=30,
            check=True,
        )
        waiter.join(10)
        assert child.returncode == -signal.SIGHUP  # the kill path ran in that process
    finally:
        child.kill()
        waiter.join(10)
    imported = {
        line.rpartition("|")[2].strip()
        for line in reaper.stderr.decode().splitlines()
        if line.startswith("import time:")
    }
    assert {"os", "_signal"} <= imported
    heavy = {"logging", "subprocess", "contextlib", "enum", "signal", "typing", "threading"}
    assert not imported & heavy
    assert not any(name.startswith("junction") for name in imported)
