"""Processes the harness starts: their own process groups, /proc readings, clean kills.

Every server runs in a new session (so its process group can be signalled whole). Kernels
started by a server usually get a session of their own too, so killing a server also walks
/proc for its descendants and kills each of them: nothing outlives the run.
"""

from __future__ import annotations

import contextlib
import itertools
import os
import signal
import socket
import subprocess
import time
from collections.abc import Mapping, Sequence
from pathlib import Path

__all__ = [
    "cpu_seconds",
    "descendants",
    "free_port",
    "kill_descendants",
    "kill_tree",
    "pss_bytes",
    "rss_bytes",
    "server_tree",
    "spawn",
    "tree_pss_bytes",
]

_CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


def free_port() -> int:
    """A TCP port on 127.0.0.1 that was free a moment ago."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def spawn(
    argv: Sequence[str], *, env: Mapping[str, str], cwd: Path, log: Path
) -> subprocess.Popen[bytes]:
    """Start ``argv`` in a new session, its output appended to ``log``."""
    with log.open("ab") as out:
        return subprocess.Popen(
            list(argv),
            env=dict(env),
            cwd=cwd,
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )


def rss_bytes(pid: int) -> int:
    """Resident set size of one process (not its children), from /proc/<pid>/status."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    raise RuntimeError(f"no VmRSS for pid {pid}")


def pss_bytes(pid: int) -> int:
    """Proportional set size of one process, from /proc/<pid>/smaps_rollup.

    Each shared page counts for its share (1/n for n processes mapping it), so the PSS of
    several processes adds up without counting a shared interpreter or library twice.
    """
    for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines():
        if line.startswith("Pss:"):
            return int(line.split()[1]) * 1024
    raise RuntimeError(f"no Pss for pid {pid}")


def _is_kernel(pid: int) -> bool:
    try:
        argv = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
    except OSError:
        return False
    if any(b"ipykernel_launcher" in arg for arg in argv):
        return True
    return any(a == b"-m" and b == b"ipykernel" for a, b in itertools.pairwise(argv))


def server_tree(pid: int) -> list[int]:
    """``pid`` and every live process below it, less kernels and whatever they started.

    Kernels are the same ipykernel under every server, so a comparison of servers leaves
    them out; helpers a server starts (a reaper, a proxy) stay in.
    """
    parents = _parents()
    found = [pid]
    frontier = [pid]
    while frontier:
        current = frontier.pop()
        children = [
            child
            for child, parent in parents.items()
            if parent == current and not _is_kernel(child)
        ]
        found.extend(children)
        frontier.extend(children)
    return found


def tree_pss_bytes(pid: int) -> int:
    """The summed PSS of :func:`server_tree` (processes that ended meanwhile count 0)."""
    total = 0
    for member in server_tree(pid):
        with contextlib.suppress(OSError):
            total += pss_bytes(member)
    return total


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of one process (not its children), from /proc/<pid>/stat."""
    stat = Path(f"/proc/{pid}/stat").read_text()
    # The command name (field 2) may hold spaces; the fields after its closing ')' do not.
    fields = stat[stat.rindex(")") + 2 :].split()
    utime, stime = int(fields[11]), int(fields[12])
    return (utime + stime) / _CLOCK_TICKS


def _parents() -> dict[int, int]:
    parents: dict[int, int] = {}
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            stat = Path(entry.path, "stat").read_text()
        except OSError:
            continue
        fields = stat[stat.rindex(")") + 2 :].split()
        parents[int(entry.name)] = int(fields[1])
    return parents


def descendants(pid: int) -> list[int]:
    """Every live process below ``pid`` in the process tree."""
    parents = _parents()
    found: list[int] = []
    frontier = [pid]
    while frontier:
        current = frontier.pop()
        children = [child for child, parent in parents.items() if parent == current]
        found.extend(children)
        frontier.extend(children)
    return found


def _signal_group_and_tree(pid: int, sig: int, tree: Sequence[int]) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pid, sig)
    for child in tree:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(child, sig)
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.kill(child, sig)


def kill_tree(process: subprocess.Popen[bytes], *, grace: float = 5.0) -> None:
    """Stop a process started by :func:`spawn` and everything it started.

    SIGTERM first (servers shut their kernels down on it), SIGKILL for whatever is left after
    ``grace`` seconds. Descendants are collected before the signal, while they are still
    linked to the server.
    """
    tree = descendants(process.pid)
    if process.poll() is None:
        _signal_group_and_tree(process.pid, signal.SIGTERM, [])
        with contextlib.suppress(subprocess.TimeoutExpired):
            process.wait(timeout=grace)
    tree = sorted(set(tree) | set(descendants(process.pid)))
    _signal_group_and_tree(process.pid, signal.SIGKILL, tree)
    with contextlib.suppress(subprocess.TimeoutExpired):
        process.wait(timeout=5)
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline and any(Path(f"/proc/{p}").exists() for p in tree):
        # Zombies of the killed server are reaped by init; wait until they are gone.
        alive = [p for p in tree if _is_running(p)]
        if not alive:
            break
        time.sleep(0.05)


def _is_running(pid: int) -> bool:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat[stat.rindex(")") + 2] != "Z"


def kill_descendants() -> None:
    """SIGKILL every process below this one (and its group): what no other cleanup reached."""
    for pid in descendants(os.getpid()):
        with contextlib.suppress(ProcessLookupError, PermissionError):
            if os.getpgid(pid) == pid:
                os.killpg(pid, signal.SIGKILL)
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.kill(pid, signal.SIGKILL)
