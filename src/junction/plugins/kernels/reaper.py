"""Kills a server's kernels when the server dies without stopping them (SIGKILL, OOM killer).

The kernels plugin starts one reaper process and keeps a pipe to its stdin. It writes
``+<pgid>`` when a local kernel starts and ``-<pgid>`` when that kernel is gone; the reaper
keeps nothing but that set. When the pipe closes, however the server ended, the reaper sends
SIGTERM to every process group still listed, SIGKILL to those alive after ``GRACE`` seconds,
and exits. After a graceful shutdown the set is empty and the reaper simply exits.

jupyter_client starts each local kernel in its own session, so its process group is the
kernel and whatever the kernel started. ipykernel also exits on its own when its parent
dies (``JPY_PARENT_PID``); the reaper covers every other kernel, and kernels too stuck to
notice. A later "reattach after restart" feature would give the reaper a grace period
during which a new server may claim the kernels instead.

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

__all__ = ["GRACE", "Reaper"]

GRACE = 3.0

log = logging.getLogger("junction.kernels")


class Reaper:
    """The server's handle on its reaper process."""

    def __init__(self) -> None:
        self._process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        """Start the reaper process (in its own session, so terminal signals miss it).

        POSIX only: elsewhere kernels rely on their own parent watch (ipykernel's).
        """
        if os.name != "posix":
            return
        self._process = subprocess.Popen(
            [sys.executable, "-I", "-S", os.path.abspath(__file__)],
            stdin=subprocess.PIPE,
            start_new_session=True,
        )

    def track(self, pgid: int | None) -> None:
        """A kernel now runs in process group ``pgid``."""
        self._write(f"+{pgid}\n")

    def untrack(self, pgid: int | None) -> None:
        """The kernel in process group ``pgid`` is gone."""
        self._write(f"-{pgid}\n")

    def close(self) -> None:
        """Let the reaper go: it kills what is still listed, then exits."""
        process, self._process = self._process, None
        if process is None or process.stdin is None:
            return
        with contextlib.suppress(OSError):
            process.stdin.close()
        with contextlib.suppress(subprocess.TimeoutExpired):
            process.wait(0.5)

    def _write(self, line: str) -> None:
        process = self._process
        if process is None or process.stdin is None or line[1:].strip() == "None":
            return
        try:
            process.stdin.write(line.encode())
            process.stdin.flush()
        except OSError as exc:  # the reaper died: kernels lose their safety net only
            log.warning("kernel reaper is gone (%s); orphaned kernels will not be killed", exc)
            self._process = None


def _alive(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _kill(groups: set[int], grace: float) -> None:
    for sig in (signal.SIGTERM, signal.SIGKILL):
        for pgid in groups:
            with contextlib.suppress(OSError):
                os.killpg(pgid, sig)
        deadline = time.monotonic() + grace
        while groups and time.monotonic() < deadline:
            groups = {pgid for pgid in groups if _alive(pgid)}
            time.sleep(0.05)
        if not groups:
            return


def main() -> None:
    """The reaper process: read the set of process groups until EOF, then kill them."""
    for sig in (signal.SIGINT, signal.SIGHUP):
        signal.signal(sig, signal.SIG_IGN)
    groups: set[int] = set()
    for raw in sys.stdin.buffer:
        line = raw.strip()
        try:
            pgid = int(line[1:])
        except ValueError:
            continue
        if line.startswith(b"+") and pgid > 1:
            groups.add(pgid)
        elif line.startswith(b"-"):
            groups.discard(pgid)
    if groups:
        _kill(groups, GRACE)


if __name__ == "__main__":
    main()
