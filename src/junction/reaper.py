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

The reaper process runs :mod:`junction._reaper` as a script (``python -I -S _reaper.py``),
which imports only a few built-in modules; this module is the server's side of the pipe.
"""

from __future__ import annotations

import contextlib
import logging
import os
import subprocess
import sys

from junction import _reaper
from junction._reaper import GRACE, session_alive, session_groups

__all__ = ["GRACE", "Reaper", "session_alive", "session_groups"]

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
            [sys.executable, "-I", "-S", os.path.abspath(_reaper.__file__)],
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
