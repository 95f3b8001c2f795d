"""One terminal: a shell on a pseudo-terminal, its scrollback and its attached clients.

The PTY's master side is read on the event loop (``add_reader``), never in a thread. Output
goes to the scrollback (the last ``scrollback_bytes``) and to the outbox of each attached
:class:`TerminalClient`. Flow control is terminado's: while every client has a full outbox
(``client_queue_bytes``) the PTY is not read, so the program writing blocks in the kernel
instead of growing the server's memory; a client further behind than four outboxes while
others keep up is closed (1013) rather than stalling them. With no client attached, output
only feeds the scrollback.

The window size is the smallest any client asked for, as in terminado, within
1..:data:`~junction.plugins.terminals.settings.MAX_SIZE` rows and columns.

States::

    running  --EOF on the PTY (the shell and everything holding the PTY exited)-->  ended
    running  --terminate(): HUP, CONT, INT, TERM, then KILL to the session-->  ended

When it ends every client gets what was still queued, then ``["disconnect", 1]``.
"""

from __future__ import annotations

import asyncio
import codecs
import contextlib
import errno
import logging
import os
import signal
import time
from collections import deque
from collections.abc import Callable
from datetime import UTC, datetime

import anyio
from ptyprocess import PtyProcess

from junction.plugins.terminals.models import Terminal
from junction.plugins.terminals.settings import MAX_SIZE, TerminalsSettings
from junction.reaper import session_alive, session_groups
from junction.services import isoformat

__all__ = ["SLOW_CLIENT", "PtyTerminal", "TerminalClient"]

log = logging.getLogger("junction.terminals")

SLOW_CLIENT = 1013
"""Close code for a client that fell too far behind (RFC 6455: try again later)."""

_READ_SIZE = 64 * 1024
_FRAME_SIZE = 64 * 1024
_MAX_PENDING_INPUT = 1 << 20
_SIGNAL_STEPS = (
    (signal.SIGHUP, signal.SIGCONT),
    (signal.SIGINT,),
    (signal.SIGTERM,),
    (signal.SIGKILL,),
)
_STEP_WAIT = 0.5


class TerminalClient:
    """One attached WebSocket as the terminal sees it: its outbox, its window size, its end.

    The terminal pushes output with :meth:`push`; the connection's writer takes it with
    :meth:`next_frame` and reports each sent frame with
    :meth:`~PtyTerminal.sent`. ``close`` holds the code and reason the server closes with;
    ``on_close``, set by the connection, is called once when it is set.
    """

    def __init__(self) -> None:
        self.chunks: deque[str] = deque()
        self.queued = 0
        self.size: tuple[int, int] | None = None
        self.ended = False
        self.close: tuple[int, str] | None = None
        self.on_close: Callable[[], None] | None = None
        self._wake = anyio.Event()

    def push(self, text: str) -> None:
        """Queue output for this client."""
        self.chunks.append(text)
        self.queued += len(text)
        self._wake.set()

    def close_soon(self, code: int, reason: str) -> None:
        """Ask the writer to stop and the socket to close with ``code``; drops the outbox."""
        if self.close is None:
            self.close = (code, reason)
            self.chunks.clear()
            self.queued = 0
            if self.on_close is not None:  # stop the writer even in the middle of a send
                self.on_close()
        self._wake.set()

    def end(self) -> None:
        """The terminal ended: the writer sends what is queued, then ``disconnect``."""
        self.ended = True
        self._wake.set()

    async def next_frame(self) -> str | None:
        """Wait for output and return up to one frame of it; None once there is nothing left
        to send (the terminal ended with the outbox empty, or :meth:`close_soon` was called)."""
        while not self.chunks and not self.ended and self.close is None:
            await self._wake.wait()
            self._wake = anyio.Event()
        if self.close is not None or not self.chunks:
            return None
        parts = [self.chunks.popleft()]
        size = len(parts[0])
        while self.chunks and size + len(self.chunks[0]) <= _FRAME_SIZE:
            text = self.chunks.popleft()
            parts.append(text)
            size += len(text)
        return "".join(parts)


class PtyTerminal:
    """A shell on a PTY shared by any number of clients; see the module docstring."""

    def __init__(
        self,
        name: str,
        process: PtyProcess,
        settings: TerminalsSettings,
        *,
        on_end: Callable[[PtyTerminal], None],
    ) -> None:
        self.name = name
        self.process = process
        self.settings = settings
        self.clients: list[TerminalClient] = []
        self.last_activity = time.time()
        self.ended = anyio.Event()
        self._on_end = on_end
        self._loop = asyncio.get_running_loop()
        self._fd: int = process.fd
        self._decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
        self._scrollback: deque[str] = deque()
        self._scrollback_size = 0
        self._pending_input = bytearray()
        self._size: tuple[int, int] = process.getwinsize()
        self._reading = False
        os.set_blocking(self._fd, False)
        self._resume()

    @property
    def pid(self) -> int:
        """The shell's process id, which is also its process group and session id."""
        return int(self.process.pid)

    def model(self) -> Terminal:
        """The terminal as the REST API shows it."""
        moment = datetime.fromtimestamp(self.last_activity, UTC)
        return Terminal(name=self.name, last_activity=isoformat(moment))

    # -- clients ------------------------------------------------------------------------------

    def attach(self) -> TerminalClient:
        """Add a client; its outbox starts with the scrollback."""
        client = TerminalClient()
        if self._scrollback:
            client.push("".join(self._scrollback))
        if self.ended.is_set():
            client.end()
        self.clients.append(client)
        return client

    def detach(self, client: TerminalClient) -> None:
        """Remove a client whose socket closed; the others may now set the size or be read."""
        with contextlib.suppress(ValueError):
            self.clients.remove(client)
        self._apply_size()
        self._maybe_resume()

    def sent(self, client: TerminalClient, size: int) -> None:
        """The client's writer sent ``size`` characters: reading may resume."""
        client.queued = max(0, client.queued - size)
        self._maybe_resume()

    def resize(self, client: TerminalClient, rows: int, cols: int) -> None:
        """Record a client's window size, clamped to 1..MAX_SIZE; the PTY takes the smallest."""
        client.size = (min(max(rows, 1), MAX_SIZE), min(max(cols, 1), MAX_SIZE))
        self._apply_size()

    @property
    def size(self) -> tuple[int, int]:
        """The PTY's current window size, ``(rows, cols)``."""
        return self._size

    def _apply_size(self) -> None:
        sizes = [client.size for client in self.clients if client.size is not None]
        if not sizes or self.ended.is_set():
            return
        size = (min(rows for rows, _ in sizes), min(cols for _, cols in sizes))
        if size != self._size:
            self._size = size
            with contextlib.suppress(OSError):
                self.process.setwinsize(*size)

    def last_activity_now(self) -> None:
        """A client did something (typed, resized): the terminal is in use."""
        self.last_activity = time.time()

    # -- input --------------------------------------------------------------------------------

    def write(self, text: str) -> bool:
        """Send keystrokes to the shell; False when the input waiting would pass 1 MiB."""
        self.last_activity = time.time()
        if self.ended.is_set():
            return True
        data = text.encode()
        if len(self._pending_input) + len(data) > _MAX_PENDING_INPUT:
            return False
        was_pending = bool(self._pending_input)
        self._pending_input += data
        if not was_pending:
            self._flush_input()
        return True

    def _flush_input(self) -> None:
        try:
            written = os.write(self._fd, self._pending_input)
        except BlockingIOError:
            written = 0
        except OSError:
            self._pending_input.clear()
            return
        del self._pending_input[:written]
        if self._pending_input:
            self._loop.add_writer(self._fd, self._on_writable)

    def _on_writable(self) -> None:
        self._loop.remove_writer(self._fd)
        if not self.ended.is_set():
            self._flush_input()

    # -- output -------------------------------------------------------------------------------

    def _resume(self) -> None:
        if not self._reading and not self.ended.is_set():
            self._loop.add_reader(self._fd, self._on_readable)
            self._reading = True

    def _pause(self) -> None:
        if self._reading:
            self._loop.remove_reader(self._fd)
            self._reading = False

    def _maybe_resume(self) -> None:
        limit = self.settings.client_queue_bytes
        if not self.clients or any(client.queued < limit for client in self.clients):
            self._resume()

    def _on_readable(self) -> None:
        try:
            data = os.read(self._fd, _READ_SIZE)
        except BlockingIOError:
            return
        except OSError as exc:  # EIO: every process holding the PTY's other side is gone
            if exc.errno != errno.EIO:
                log.warning("terminal %s: reading the PTY failed: %s", self.name, exc)
            data = b""
        if not data:
            self._finish_output()
            return
        self.last_activity = time.time()
        self._publish(self._decoder.decode(data))

    def _publish(self, text: str) -> None:
        if not text:
            return
        self._keep(text)
        limit = self.settings.client_queue_bytes
        for client in self.clients:
            if client.close is not None:
                continue
            if client.queued > 4 * limit:
                client.close_soon(
                    SLOW_CLIENT, "the client fell too far behind the terminal's output; reconnect"
                )
                continue
            client.push(text)
        if self.clients and all(
            client.queued >= limit or client.close is not None for client in self.clients
        ):
            self._pause()

    def _keep(self, text: str) -> None:
        limit = self.settings.scrollback_bytes
        if limit == 0:
            return
        if len(text) >= limit:
            self._scrollback.clear()
            self._scrollback.append(text[-limit:])
            self._scrollback_size = limit
            return
        self._scrollback.append(text)
        self._scrollback_size += len(text)
        while self._scrollback_size > limit:
            self._scrollback_size -= len(self._scrollback.popleft())

    def _finish_output(self) -> None:
        self._pause()
        self._publish(self._decoder.decode(b"", final=True))
        self.end()

    def end(self) -> None:
        """Stop reading; every client gets its queued output, then ``disconnect``."""
        if self.ended.is_set():
            return
        self._pause()
        self._loop.remove_writer(self._fd)
        self.ended.set()
        for client in self.clients:
            client.end()
        self._on_end(self)

    # -- stopping -----------------------------------------------------------------------------

    async def terminate(self) -> None:
        """Signal every process group of the shell's session, as terminado does: SIGHUP and
        SIGCONT, SIGINT, SIGTERM, each with half a second to work, then SIGKILL; return once
        the shell is reaped and the session is empty (or 5 s after SIGKILL)."""
        for signals in _SIGNAL_STEPS:
            for pgid in session_groups(self.pid):
                for sig in signals:
                    with contextlib.suppress(OSError):
                        os.killpg(pgid, sig)
            wait = 5.0 if signals == (signal.SIGKILL,) else _STEP_WAIT
            with anyio.move_on_after(wait):
                await self._wait_session_gone()
                break
        self.end()

    async def _wait_session_gone(self) -> None:
        # No event tells when a process group empties: poll, as terminado does.
        while True:
            if not self.process.isalive() and not session_alive(self.pid):
                return
            await anyio.sleep(0.02)

    async def wait_exit(self) -> None:
        """Wait for the shell to be reaped once its output ended; close the PTY."""
        while True:  # no event for a child's exit without a SIGCHLD handler
            if not self.process.isalive():
                break
            await anyio.sleep(0.02)
        self.process.delayafterclose = 0
        with contextlib.suppress(OSError):
            self.process.close(force=True)
