"""Kills the processes a server started when the server dies without stopping them.

The core provides one :class:`Reaper` to every plugin as the :data:`~junction.services.REAPER`
service. A plugin that starts child processes in their own process group (kernels,
terminals) calls :meth:`Reaper.track` with the group id when one starts and
:meth:`Reaper.untrack` when it is gone. The first ``track`` starts the reaper process, which
reads ``+<pgid>`` and ``-<pgid>`` lines from a pipe and keeps nothing but that set. When the
pipe closes, however the server ended (SIGKILL, the OOM killer, a clean exit), the reaper
sends SIGHUP, SIGCONT and SIGTERM to every process group still listed, SIGKILL to those alive
after ``GRACE`` seconds, and exits. A tracked group that leads a session (kernels and
terminals start each child in a session of its own) takes every group of that session with
it, so a terminal's background jobs go too. After a graceful shutdown the set is empty and
the reaper simply exits.

jupyter_client starts each local kernel in its own session, and so does the terminals plugin
for each shell, so a process group is the child and whatever it started.

Kernels meant to outlive a crash (``kernels.keep_on_shutdown``) are tracked with a *marker*,
a file the next server touches when it reattaches the kernel (its connection file). With an
orphan grace set (:meth:`Reaper.set_orphan_grace`), such groups are not killed at once when
the pipe closes: the reaper waits up to the grace for each marker to change (claimed) or
disappear (shut down), and kills only the groups nobody claimed.

This file runs as a script (``python -I -S reaper.py``): it imports only the standard library.
"""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import subprocess
import sys
import time

__all__ = ["GRACE", "Reaper", "session_alive", "session_groups"]

GRACE = 3.0

log = logging.getLogger("junction.reaper")


class Reaper:
    """The server's handle on its reaper process, started on the first :meth:`track`."""

    def __init__(self) -> None:
        self._process: subprocess.Popen[bytes] | None = None
        self._grace = 0.0

    def start(self) -> None:
        """Start the reaper process (in its own session, so terminal signals miss it).

        Called by the first :meth:`track`; does nothing when it runs already. POSIX only:
        elsewhere children rely on their own parent watch (ipykernel's).
        """
        if os.name != "posix" or self._process is not None:
            return
        self._process = subprocess.Popen(
            [sys.executable, "-I", "-S", os.path.abspath(__file__)],
            stdin=subprocess.PIPE,
            start_new_session=True,
        )
        if self._grace:
            self._write(f"g{self._grace}\n")

    @property
    def running(self) -> bool:
        """Whether the reaper process is started and not yet let go."""
        return self._process is not None

    def set_orphan_grace(self, seconds: float) -> None:
        """How long groups tracked with a marker may wait for a new server to claim them."""
        self._grace = max(0.0, seconds)
        self._write(f"g{self._grace}\n")

    def track(self, pgid: int | None, *, marker: str | None = None) -> None:
        """A child now runs in process group ``pgid``; starts the reaper if needed.

        ``marker``: a file whose change (or removal) after the server died means another
        server claimed the child, within the orphan grace.
        """
        if pgid is not None:
            self.start()
        if marker is not None and "\n" not in marker:
            self._write(f"+{pgid} {marker}\n")
        else:
            self._write(f"+{pgid}\n")

    def untrack(self, pgid: int | None) -> None:
        """The child in process group ``pgid`` is gone."""
        self._write(f"-{pgid}\n")

    def close(self) -> None:
        """Let the reaper go: it kills what is still listed, then exits.

        Called by the core when the server stops, after every plugin has stopped.
        """
        process, self._process = self._process, None
        if process is None or process.stdin is None:
            return
        with contextlib.suppress(OSError):
            process.stdin.close()
        with contextlib.suppress(subprocess.TimeoutExpired):
            process.wait(0.5)

    def _write(self, line: str) -> None:
        process = self._process
        if process is None or process.stdin is None or line[1:].startswith("None"):
            return
        try:
            process.stdin.write(line.encode())
            process.stdin.flush()
        except OSError as exc:  # the reaper died: children lose their safety net only
            log.warning("reaper is gone (%s); orphaned processes will not be killed", exc)
            self._process = None


def session_groups(sid: int) -> set[int]:
    """The process groups of session ``sid`` (its leader's group included), from ``/proc``.

    A child started in its own session (a kernel, a terminal's shell) is the session's
    leader, and whatever it starts stays in that session unless it calls ``setsid`` itself;
    a shell with job control puts each job in a group of its own, so killing the leader's
    group alone would miss them. Where ``/proc`` is missing this is just ``{sid}``.
    """
    return {sid} | {pgid for _, pgid in _session_members(sid)}


def session_alive(sid: int) -> bool:
    """Whether any process of session ``sid`` still runs (zombies, which only wait for
    their parent to reap them, do not count)."""
    if not os.path.isdir("/proc"):
        return _alive(sid)
    return bool(_session_members(sid))


def _session_members(sid: int) -> set[tuple[int, int]]:
    """``(pid, pgid)`` of every process of session ``sid`` that is not a zombie."""
    members: set[tuple[int, int]] = set()
    try:
        entries = os.listdir("/proc")
    except OSError:
        return members
    for entry in entries:
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat", "rb") as stat:
                fields = stat.read().rpartition(b")")[2].split()
        except OSError:
            continue
        if len(fields) > 3 and int(fields[3]) == sid and fields[0] != b"Z":
            members.add((int(entry), int(fields[2])))
    return members


def _alive(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _start_time(pid: int) -> bytes | None:
    """When process ``pid`` started (clock ticks since boot, from ``/proc``), if it runs."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as stat:
            fields = stat.read().rpartition(b")")[2].split()
    except OSError:
        return None
    return fields[19] if len(fields) > 19 else None


def _same_leader(sid: int, started: bytes | None) -> bool:
    """Whether ``sid`` still names the session tracked when its leader started at ``started``.

    The kernel never reuses a number while a process, group or session still holds it, so a
    leader that is gone leaves its group and session under the same number; a running
    process under that number that started at another time means the whole session ended and
    the number went to someone else, who must not be killed.
    """
    now = _start_time(sid)
    return now is None or started is None or now == started


def _kill(sessions: set[int], grace: float, starts: dict[int, bytes | None]) -> None:
    sessions = {sid for sid in sessions if _same_leader(sid, starts.get(sid))}
    groups = {pgid for sid in sessions for pgid in session_groups(sid)}
    for signals in ((signal.SIGHUP, signal.SIGCONT, signal.SIGTERM), (signal.SIGKILL,)):
        for pgid in groups:
            for sig in signals:
                with contextlib.suppress(OSError):
                    os.killpg(pgid, sig)
        deadline = time.monotonic() + grace
        while groups and time.monotonic() < deadline:
            groups = {pgid for pgid in groups if _alive(pgid)}
            time.sleep(0.05)
        if not groups:
            return
        groups |= {pgid for sid in sessions for pgid in session_groups(sid)}


def _stamp(path: bytes) -> int | None:
    try:
        return os.stat(path).st_mtime_ns
    except OSError:
        return None


def _unclaimed(marked: dict[int, bytes], stamps: dict[int, int | None], grace: float) -> set[int]:
    """The groups of ``marked`` whose marker did not change from ``stamps`` within ``grace``
    seconds and that still run."""
    waiting = set(marked)
    deadline = time.monotonic() + grace
    while waiting and time.monotonic() < deadline:
        time.sleep(0.25)
        for pgid in list(waiting):
            stamp = _stamp(marked[pgid])
            if (stamp != stamps[pgid] and stamp is not None) or not _alive(pgid):
                waiting.discard(pgid)  # claimed by a new server, or gone
            elif stamp is None and stamps[pgid] is not None:
                waiting.discard(pgid)  # its marker was removed: shut down by a new server
    return waiting


def main() -> None:
    """The reaper process: read the set of process groups until EOF, then kill them."""
    for sig in (signal.SIGINT, signal.SIGHUP):
        signal.signal(sig, signal.SIG_IGN)
    groups: set[int] = set()
    starts: dict[int, bytes | None] = {}
    markers: dict[int, bytes] = {}
    grace = 0.0
    for raw in sys.stdin.buffer:
        line = raw.strip()
        if line.startswith(b"g"):
            with contextlib.suppress(ValueError):
                grace = max(0.0, float(line[1:]))
            continue
        number, _, marker = line[1:].partition(b" ")
        try:
            pgid = int(number)
        except ValueError:
            continue
        if line.startswith(b"+") and pgid > 1:
            groups.add(pgid)
            starts[pgid] = _start_time(pgid)
            if marker:
                markers[pgid] = marker
        elif line.startswith(b"-"):
            groups.discard(pgid)
            starts.pop(pgid, None)
            markers.pop(pgid, None)
    marked = {pgid: markers[pgid] for pgid in groups if pgid in markers} if grace else {}
    stamps = {pgid: _stamp(path) for pgid, path in marked.items()}
    if groups - set(marked):
        _kill(groups - set(marked), GRACE, starts)
    if marked:
        unclaimed = _unclaimed(marked, stamps, grace)
        if unclaimed:
            _kill(unclaimed, GRACE, starts)


if __name__ == "__main__":
    main()
