"""The reaper process: a script the server's :class:`~junction.reaper.Reaper` runs.

``python -I -S _reaper.py`` reads ``+<pgid>[ <marker>]``, ``-<pgid>`` and ``g<seconds>``
lines on stdin until EOF (the server died or let it go), then kills every session still
listed, as :mod:`junction.reaper` describes. One runs beside every server that started a
kernel or terminal, for as long as the server lives, so it imports nothing beyond what the
interpreter loads at start plus ``os``, ``sys``, ``time`` and the C half of ``signal``: no
logging, subprocess, contextlib or enum (``python -X importtime`` lists what it imports).

The server imports this module too, for :func:`session_groups` and :func:`session_alive`.
"""

from __future__ import annotations

import os
import sys
import time

try:
    # The C module under ``signal``: signal.py wraps its constants in IntEnums, and importing
    # enum (with functools, collections, ...) costs this process about 0.7 MB.
    import _signal as signal  # type: ignore[import-not-found]
except ImportError:  # an interpreter other than CPython
    import signal

__all__ = ["GRACE", "main", "session_alive", "session_groups"]

GRACE = 3.0


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


def _signal_group(pgid: int, sig: int) -> None:
    try:  # noqa: SIM105  (contextlib would be one more module in this process)
        os.killpg(pgid, sig)
    except OSError:
        pass


def _kill(sessions: set[int], grace: float, starts: dict[int, bytes | None]) -> None:
    sessions = {sid for sid in sessions if _same_leader(sid, starts.get(sid))}
    groups = {pgid for sid in sessions for pgid in session_groups(sid)}
    for signals in ((signal.SIGHUP, signal.SIGCONT, signal.SIGTERM), (signal.SIGKILL,)):
        for pgid in groups:
            for sig in signals:
                _signal_group(pgid, sig)
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
            try:  # noqa: SIM105  (no contextlib here, see _signal_group)
                grace = max(0.0, float(line[1:]))
            except ValueError:
                pass
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
