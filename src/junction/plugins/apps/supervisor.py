"""One app's process: start it in a session of its own, wait until it answers, watch it.

States (see :data:`~junction.plugins.apps.models.AppStatus`)::

    stopped ──start──► starting ──ready check passes──► ready ──exits──► starting (restart,
       ▲                  │ exits / timeout                 │          after a back-off)
       └──── stop ────────┴──────────► failed ◄─────────────┘ (restart limit reached)

The readiness check is an HTTP GET of the preset's path on the app's loopback port, repeated
with a growing pause until it answers 2xx or 3xx, the process exits, or the start timeout
passes; only then is traffic proxied. Output (stdout and stderr together) goes to a
:class:`LogBuffer` that keeps the last ``log_limit`` bytes. The process group is tracked by
the core reaper, so nothing is left behind when the server is killed.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

import anyio
from anyio.abc import Process, TaskGroup

from junction.plugins.apps.models import AppStatus
from junction.reaper import Reaper, session_groups

if TYPE_CHECKING:
    import httpx

__all__ = ["AppProcess", "Launch", "LogBuffer", "free_loopback_port"]

ADDRESS = "127.0.0.1"
LAST_LINES = 20


def free_loopback_port() -> int:
    """A TCP port on 127.0.0.1 that was free a moment ago."""
    with socket.socket() as sock:
        sock.bind((ADDRESS, 0))
        return int(sock.getsockname()[1])


class LogBuffer:
    """The last ``limit`` bytes an app wrote, and a way to wait for more."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.total = 0
        """Bytes ever written; a reader's position for :meth:`since`."""
        self._data = bytearray()
        self._more = anyio.Event()

    def append(self, chunk: bytes) -> None:
        """Add output, dropping the oldest beyond the limit; wakes waiting readers."""
        self._data += chunk
        if len(self._data) > self.limit:
            del self._data[: len(self._data) - self.limit]
        self.total += len(chunk)
        self._more.set()
        self._more = anyio.Event()

    def __len__(self) -> int:
        return len(self._data)

    def text(self) -> str:
        """Everything kept, decoded (invalid UTF-8 replaced)."""
        return self._data.decode(errors="replace")

    def tail(self, lines: int = LAST_LINES) -> list[str]:
        """The last ``lines`` lines kept."""
        return self.text().splitlines()[-lines:]

    def since(self, position: int) -> bytes:
        """What was written after ``position`` (what is still kept of it)."""
        missing = self.total - position
        if missing <= 0:
            return b""
        return bytes(self._data[-min(missing, len(self._data)) :])

    async def wait_beyond(self, position: int) -> None:
        """Return once more than ``position`` bytes were ever written."""
        while self.total <= position:
            await self._more.wait()


@dataclass(frozen=True)
class Launch:
    """What to run for a given port: arguments, environment, working directory, ready path."""

    argv: list[str]
    env: dict[str, str]
    cwd: str
    ready_path: str


def _signal_session(pid: int, sig: int) -> None:
    for group in session_groups(pid):
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(group, sig)


class AppProcess:
    """Supervises one app's process across starts, crashes and stops (see the module map)."""

    def __init__(
        self,
        launch: Callable[[int], Launch],
        *,
        reaper: Reaper,
        task_group: TaskGroup,
        client: httpx.AsyncClient,
        log_limit: int,
        start_timeout: float,
        stop_timeout: float,
        restart_limit: int,
    ) -> None:
        self._launch = launch
        self._reaper = reaper
        self._task_group = task_group
        self._client = client
        self.logs = LogBuffer(log_limit)
        self.start_timeout = start_timeout
        self.stop_timeout = stop_timeout
        self.restart_limit = restart_limit
        self.status: AppStatus = "stopped"
        self.reason: str | None = None
        self.last_log: list[str] = []
        self.restarts = 0
        self.port: int | None = None
        self.pid: int | None = None
        self.last_activity = time.time()
        self.connections = 0
        self._process: Process | None = None
        self._stopping = False
        self._changed = anyio.Event()
        self._done = anyio.Event()
        self._done.set()
        self._lock = anyio.Lock()
        self._output_done = anyio.Event()
        self._stop_requested = anyio.Event()
        self.on_status: Callable[[AppStatus, str | None], None] | None = None
        """Called at each change of ``status``, with the new status and its reason."""

    def touch(self) -> None:
        """Note traffic (a request or a WebSocket message), for idle culling."""
        self.last_activity = time.time()

    def _set(self, status: AppStatus, reason: str | None = None) -> None:
        if status != self.status and self.on_status is not None:
            self.on_status(status, reason)
        self.status = status
        self.reason = reason
        self.last_log = self.logs.tail() if status == "failed" else []
        self._changed.set()
        self._changed = anyio.Event()

    async def start(self) -> None:
        """Start the process unless it is starting or ready; returns at once."""
        async with self._lock:
            if self.status in ("starting", "ready"):
                return
            await self._done.wait()
            self._stopping = False
            self._stop_requested = anyio.Event()
            self.restarts = 0
            self._done = anyio.Event()
            self._set("starting")
            self.touch()
            self._task_group.start_soon(self._run)

    async def wait_settled(self) -> AppStatus:
        """Wait while the app is starting; returns the status it reached."""
        while self.status == "starting":
            await self._changed.wait()
        return self.status

    async def stop(self, reason: str | None = None) -> None:
        """Stop the process group (SIGTERM, then SIGKILL after ``stop_timeout``)."""
        self._stop_requested.set()  # ends a restart back-off at once
        async with self._lock:
            self._stopping = True
            process = self._process
            if process is not None and process.returncode is None:
                _signal_session(process.pid, signal.SIGTERM)
                with anyio.move_on_after(self.stop_timeout):
                    await process.wait()
            if process is not None:
                _signal_session(process.pid, signal.SIGKILL)
            await self._done.wait()
            if self.status != "failed" or reason is not None:
                self._set("stopped", reason)

    async def _run(self) -> None:
        try:
            attempt = 0
            while not self._stopping:
                code = await self._run_once()
                if code is None or self._stopping:
                    return
                if attempt >= self.restart_limit:
                    self._set("failed", f"exited with code {code} ({attempt} restarts)")
                    return
                attempt += 1
                self.restarts = attempt
                self._set("starting", f"exited with code {code}; restart {attempt}")
                with anyio.move_on_after(min(0.5 * 2**attempt, 30.0)):
                    await self._stop_requested.wait()
        finally:
            self._process = None
            self._done.set()

    async def _run_once(self) -> int | None:
        """One process lifetime: the exit code after it was ready, or None when it failed
        to become ready (then the status is ``failed``) or was stopped."""
        port = free_loopback_port()
        launch = self._launch(port)
        try:
            process = await anyio.open_process(
                launch.argv,
                stdin=subprocess.DEVNULL,
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
                cwd=launch.cwd,
                env=launch.env,
                start_new_session=True,
            )
        except OSError as exc:
            self.logs.append(f"{exc}\n".encode())
            self._set("failed", f"could not start {launch.argv[0]!r}: {exc.strerror or exc}")
            return None
        self._process, self.port, self.pid = process, port, process.pid
        self._output_done = anyio.Event()
        self._reaper.track(process.pid)
        try:
            async with anyio.create_task_group() as group:
                group.start_soon(self._read_output, process)
                problem = await self._wait_ready(process, port, launch.ready_path)
                if problem is not None:
                    _signal_session(process.pid, signal.SIGKILL)
                    await process.wait()
                    group.cancel_scope.cancel()
                    if not self._stopping:
                        self._set("failed", problem)
                    return None
                self._set("ready")
                code = await process.wait()
                _signal_session(process.pid, signal.SIGKILL)  # whatever it left behind
        finally:
            with anyio.CancelScope(shield=True):
                if process.returncode is None:
                    _signal_session(process.pid, signal.SIGKILL)
                    await process.wait()
                self._reaper.untrack(process.pid)
        return code

    async def _read_output(self, process: Process) -> None:
        assert process.stdout is not None
        try:
            with contextlib.suppress(anyio.EndOfStream, anyio.ClosedResourceError, OSError):
                async for chunk in process.stdout:
                    self.logs.append(chunk)
        finally:
            self._output_done.set()

    async def _wait_ready(self, process: Process, port: int, path: str) -> str | None:
        """None once the app answers; else why it never did."""
        import httpx  # loaded with the client; kept out of startup

        url = f"http://{ADDRESS}:{port}/{path.lstrip('/')}"
        pause = 0.05
        with anyio.move_on_after(self.start_timeout):
            while True:
                if self._stopping:
                    return "stopped while starting"
                if process.returncode is not None:
                    with anyio.move_on_after(1):  # let the reader take the last output
                        await self._output_done.wait()
                    return f"exited with code {process.returncode} before it was ready"
                with contextlib.suppress(httpx.HTTPError):
                    response = await self._client.get(url, timeout=5)
                    if response.status_code < 400:
                        return None
                await anyio.sleep(pause)
                pause = min(pause * 2, 0.5)
        return f"did not become ready within {self.start_timeout:g} s (GET {path or '/'})"
