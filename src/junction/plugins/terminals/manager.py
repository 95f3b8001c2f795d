"""PtyTerminals: the :class:`~junction.plugins.terminals.service.TerminalService`.

Terminals by name, each a :class:`~junction.plugins.terminals.terminal.PtyTerminal` running
the shell in a session of its own (``ptyprocess`` calls ``setsid``), which the core's reaper
tracks so a server killed outright leaves no shell behind. A culler loop terminates terminals
without input or output for ``cull_inactive_timeout`` seconds, as jupyter_server's
``TerminalManager`` does. At exit every terminal is terminated, concurrently.
"""

from __future__ import annotations

import contextlib
import logging
import math
import os
import pwd
import re
import signal
import sys
import time
from datetime import UTC, datetime
from pathlib import Path
from types import TracebackType

import anyio
import anyio.abc
from ptyprocess import PtyProcess

from junction.childenv import child_environment, run_as
from junction.errors import BadRequest, Conflict, Forbidden, ServiceUnavailable
from junction.plugins.terminals.models import Terminal
from junction.plugins.terminals.service import TerminalNotFound
from junction.plugins.terminals.settings import TerminalsSettings
from junction.plugins.terminals.terminal import PtyTerminal
from junction.reaper import Reaper

__all__ = ["PtyTerminals", "default_shell"]

log = logging.getLogger("junction.terminals")

_NAME = re.compile(r"\w{1,255}")
_EXIT_WAIT = 5.0


def default_shell() -> list[str]:
    """The user's login shell: ``$SHELL``, else the password database, else ``/bin/sh``.

    It runs as a login shell (``-l``) when the server's own output is not a terminal, as
    Jupyter does, so a server started by a service manager still reads the user's profile.
    """
    shell = os.environ.get("SHELL")
    if not shell:
        try:
            shell = pwd.getpwuid(os.getuid()).pw_shell or "/bin/sh"
        except KeyError:
            shell = "/bin/sh"
    return [shell] if sys.stdout.isatty() else [shell, "-l"]


def _default_signals() -> None:  # runs in the child between fork and exec
    for sig in (signal.SIGPIPE, signal.SIGXFSZ):
        signal.signal(sig, signal.SIG_DFL)


class PtyTerminals:
    """Implements :class:`~junction.plugins.terminals.service.TerminalService`.

    An async context manager: entering starts the culler in ``task_group``; exiting
    terminates every terminal.
    """

    def __init__(
        self,
        settings: TerminalsSettings,
        *,
        root_dir: Path,
        reaper: Reaper,
        task_group: anyio.abc.TaskGroup,
        server_url: str | None = None,
        max_message_size: int = 10 << 20,
    ) -> None:
        self.settings = settings
        self.max_message_size = max_message_size
        self.root_dir = root_dir.resolve()
        self._reaper = reaper
        self._task_group = task_group
        self._server_url = server_url
        self._terminals: dict[str, PtyTerminal] = {}
        self._culler = anyio.CancelScope()
        # PTY callbacks run outside any task; they hand ended terminals to the reaping loop.
        self._ended_send, self._ended_receive = anyio.create_memory_object_stream[PtyTerminal](
            math.inf
        )

    async def __aenter__(self) -> PtyTerminals:
        self._task_group.start_soon(self._reap_loop)
        if self.settings.cull_inactive_timeout > 0:
            self._task_group.start_soon(self._cull_loop)
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        async with anyio.create_task_group() as group:
            for terminal in list(self._terminals.values()):
                group.start_soon(self._stop, terminal)
        self._culler.cancel()
        self._ended_send.close()

    # -- the TerminalService Protocol ---------------------------------------------------------

    async def create(self, *, name: str | None = None, cwd: str | None = None) -> Terminal:
        """Start the shell on a new PTY; see :meth:`TerminalService.create`."""
        account = await run_as()
        if name is None:
            name = self._free_name()
        elif not _NAME.fullmatch(name):
            raise BadRequest(
                f"Invalid terminal name {name!r}: use letters, digits and underscores",
                reason="Invalid name",
            )
        elif name in self._terminals:
            raise Conflict(f"Terminal already exists: {name}")
        directory = self._directory(cwd)
        limit = self.settings.max_terminals
        if limit is not None and len(self._terminals) >= limit:
            raise Forbidden(
                f"Resource Limit: {limit} terminals are running, the most allowed "
                "(terminals.max_terminals); close one first",
                reason="Resource Limit",
            )
        argv = self.settings.shell_command or default_shell()
        env = {
            **child_environment(),
            "TERM": "xterm-256color",
            "JUPYTER_SERVER_ROOT": str(self.root_dir),
        }
        if self._server_url is not None:
            env["JUPYTER_SERVER_URL"] = self._server_url
        if account is not None:
            env.update(account.environment())
            argv = account.wrap(argv)
        try:
            process = PtyProcess.spawn(
                argv, cwd=str(directory), env=env, preexec_fn=_default_signals
            )
        except (OSError, FileNotFoundError) as exc:
            log.error("terminal %s: cannot start %s: %s", name, argv, exc)
            raise ServiceUnavailable(
                f"The terminal's shell could not start: {exc}", reason="Shell failed to start"
            ) from None
        terminal = PtyTerminal(name, process, self.settings, on_end=self._ended)
        self._terminals[name] = terminal
        self._reaper.track(terminal.pid)
        log.info("terminal %s: started %s in %s (pid %d)", name, argv[0], directory, terminal.pid)
        return terminal.model()

    async def get(self, name: str) -> Terminal:
        """The model of a running terminal."""
        return self.terminal(name).model()

    async def list(self) -> list[Terminal]:
        """Every running terminal, in the order they started."""
        return [terminal.model() for terminal in self._terminals.values()]

    def exists(self, name: str) -> bool:
        """Whether a terminal with this name runs."""
        return name in self._terminals

    async def terminate(self, name: str) -> None:
        """Kill the terminal's session and forget it; returns once its processes are gone."""
        await self._stop(self.terminal(name))

    # -- the plugin's own API -----------------------------------------------------------------

    def terminal(self, name: str) -> PtyTerminal:
        """The running terminal called ``name``; raises :class:`TerminalNotFound`."""
        try:
            return self._terminals[name]
        except KeyError:
            raise TerminalNotFound(name) from None

    def terminal_count(self) -> int:
        """How many terminals run (the ``terminals`` gauge of ``/api/status``)."""
        return len(self._terminals)

    def connection_count(self) -> int:
        """How many WebSockets are attached to terminals."""
        return sum(len(terminal.clients) for terminal in self._terminals.values())

    def last_activity(self) -> datetime | None:
        """The latest input or output of any terminal, or None without terminals."""
        latest = max((t.last_activity for t in self._terminals.values()), default=None)
        return None if latest is None else datetime.fromtimestamp(latest, UTC)

    # -- internals ----------------------------------------------------------------------------

    def _free_name(self) -> str:
        number = 1
        while str(number) in self._terminals:
            number += 1
        return str(number)

    def _directory(self, cwd: str | None) -> Path:
        """``cwd`` as an absolute path inside the root, else as an API path under it (as
        JupyterLab's "Open in Terminal" sends it); 400 when outside or not a directory."""
        if cwd is None or not cwd.strip():
            return self.root_dir
        if "\0" in cwd:
            raise BadRequest(
                "invalid cwd: NUL bytes are not allowed in a path", reason="No such directory"
            )
        candidates = [Path(cwd)] if Path(cwd).is_absolute() else []
        candidates.append(self.root_dir / cwd.lstrip("/"))
        outside = False
        for candidate in candidates:
            resolved = candidate.resolve()
            if not resolved.is_relative_to(self.root_dir):
                outside = True
            elif resolved.is_dir():
                return resolved
        if outside:
            raise BadRequest(
                f"cwd {cwd!r} is outside the server root", reason="cwd outside the root"
            )
        raise BadRequest(f"cwd {cwd!r} is not a directory", reason="No such directory")

    async def _stop(self, terminal: PtyTerminal) -> None:
        await terminal.terminate()
        await self._forget(terminal)

    def _ended(self, terminal: PtyTerminal) -> None:
        """The terminal's output ended (the shell exited, or it was terminated)."""
        with contextlib.suppress(anyio.ClosedResourceError):
            self._ended_send.send_nowait(terminal)

    async def _reap_loop(self) -> None:
        async with self._ended_receive, anyio.create_task_group() as group:
            async for terminal in self._ended_receive:
                group.start_soon(self._reap, terminal)

    async def _reap(self, terminal: PtyTerminal) -> None:
        with anyio.move_on_after(_EXIT_WAIT) as scope:
            await terminal.wait_exit()
        if scope.cancelled_caught:  # the PTY closed but the shell lives on: make sure
            await terminal.terminate()
        await self._forget(terminal)

    async def _forget(self, terminal: PtyTerminal) -> None:
        if self._terminals.get(terminal.name) is terminal:
            del self._terminals[terminal.name]
            self._reaper.untrack(terminal.pid)
            log.info("terminal %s: ended", terminal.name)
        await terminal.wait_exit()

    async def _cull_loop(self) -> None:
        with self._culler:
            while True:
                await anyio.sleep(self.settings.cull_interval)
                await self._cull_once()

    async def _cull_once(self) -> None:
        """Terminate every terminal inactive for longer than ``cull_inactive_timeout``."""
        cutoff = time.time() - self.settings.cull_inactive_timeout
        for terminal in [t for t in self._terminals.values() if t.last_activity < cutoff]:
            log.info(
                "terminal %s: culled after %.0f s without activity",
                terminal.name,
                self.settings.cull_inactive_timeout,
            )
            with contextlib.suppress(TerminalNotFound):
                await self._stop(terminal)
