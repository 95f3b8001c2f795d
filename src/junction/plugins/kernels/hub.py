"""The ZeroMQ side of one kernel, shared by all of its WebSocket clients.

One :class:`KernelHub` per kernel holds one socket per channel (shell, control and stdin
DEALERs sharing one identity, as the kernel sends ``input_request`` to the shell identity;
an iopub SUB), however many clients are attached. Routing:

- iopub messages go to every client slot (attached, or detached within the window);
- a client's ``*_request`` is remembered by ``msg_id``; the reply, and any ``input_request``
  on stdin, goes to that client only (found through the parent header's ``msg_id``);
- requests the hub sends itself (``kernel_info_request`` nudges, the seed notebook's
  ``execute_request`` messages) are answered to the hub.

The hub also tracks the kernel's ``execution_state`` and ``last_activity`` from iopub status
messages, ignoring statuses caused by the untracked message types below (a nudge must not
make a kernel look active, nor idle while it runs a cell).

When the kernel goes away (restart, death, shutdown), :meth:`fail_pending` answers every
request still in flight with an error reply and an idle status, so no client waits forever.
"""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import anyio
import zmq
import zmq.asyncio

from junction.plugins.kernels.slots import ClientSlot, SlotLimits, SlotOwner
from junction.plugins.kernels.wire import (
    Message,
    Part,
    Signer,
    from_zmq,
    make_message,
    to_zmq,
)

__all__ = ["UNTRACKED_MESSAGE_TYPES", "KernelHub"]

log = logging.getLogger("junction.kernels")

_HELD_READY_WAIT = 10.0
"""Seconds messages held during a restart wait for the new kernel's iopub before going out."""

UNTRACKED_MESSAGE_TYPES = frozenset(
    {
        "comm_info_request",
        "kernel_info_request",
        "shutdown_request",
        "interrupt_request",
        "debug_request",
        "usage_request",
    }
)
"""Requests whose busy/idle statuses say nothing about user activity (clients and the hub
send them on their own). JupyterLab reads the same list from the page config."""

_BURST = 256
"""Most messages read from one socket per event-loop wakeup."""

_PACE = 0.001
"""While a kernel streams output, iopub is read at most once per this many seconds."""

_PACE_AFTER = 4
"""Consecutive quick iopub wakeups ending on an output before pacing starts."""

_COPY_BELOW = 64 * 1024
"""Message parts smaller than this are copied out of ZeroMQ (cheaper than a view)."""

_NOBLOCK = int(zmq.NOBLOCK)
_EVENTS = int(zmq.EVENTS)
_POLLIN = int(zmq.POLLIN)

_HELD_LIMIT = 10_000
"""Most client messages kept back while a kernel restarts; requests beyond get error replies."""

_SOCKET_TYPES = {
    "shell": zmq.DEALER,
    "control": zmq.DEALER,
    "stdin": zmq.DEALER,
    "iopub": zmq.SUB,
}


@dataclass(slots=True)
class _Internal:
    """A request the hub sent itself, and its reply once it came."""

    replied: anyio.Event
    reply: Message | None = None
    failure: str | None = None
    """Why no reply will come (the kernel went away); set with ``replied``."""
    nudge: bool = False
    """A ``kernel_info_request`` of :meth:`KernelHub.wait_ready`: never failed, only dropped."""


@dataclass(slots=True)
class _Pending:
    """A client request awaiting its reply."""

    slot: ClientSlot
    channel: str
    msg_type: str
    header: bytes


class KernelHub:
    """Connects one kernel's channels to its clients. See the module docstring."""

    def __init__(self, kernel_id: str, context: zmq.asyncio.Context, limits: SlotLimits) -> None:
        self.kernel_id = kernel_id
        self.limits = limits
        self.slots: dict[str, ClientSlot] = {}
        self.execution_state = "starting"
        self.last_activity = time.time()
        self.client_activity = 0.0
        """When a client last sent the kernel a message that counts as activity."""
        self.kernel_session = uuid.uuid4().hex
        self.kernel_info: dict[str, Any] | None = None
        # Plain (not asyncio) sockets on the same ZeroMQ context: the hub reads them through
        # their file descriptors itself; see _read.
        self._context: zmq.Context[zmq.Socket[bytes]] = zmq.Context.shadow(context.underlying)
        self._identity = uuid.uuid4().hex.encode()
        self._session = uuid.uuid4().hex
        self._sockets: dict[str, zmq.Socket[bytes]] = {}
        self._signer = Signer(b"")
        self._pending: dict[str, _Pending] = {}
        self._internal: dict[str, _Internal] = {}
        self._idle_waiters: dict[str, anyio.Event] = {}
        self._listeners: dict[str, Callable[[str, dict[str, Any]], None]] = {}
        self._held: list[Message] = []
        self._holding = False
        self._refusal: str | None = None
        self._iopub_seen = anyio.Event()
        self._output_last = False  # the last iopub message read was an output, not a status
        self._readers: anyio.CancelScope | None = None
        self._readers_done = anyio.Event()
        self._nudging = False

    # -- connecting ---------------------------------------------------------------------------

    @property
    def connected(self) -> bool:
        """Whether the sockets are connected to a running kernel."""
        return bool(self._sockets)

    @property
    def connections(self) -> int:
        """How many WebSockets are attached."""
        return sum(1 for slot in self.slots.values() if slot.attached)

    async def connect(self, info: dict[str, Any], task_group: anyio.abc.TaskGroup) -> None:
        """Open the channel sockets to a kernel described by its connection ``info``.

        Called after every (re)start; messages clients sent meanwhile go out now.
        """
        key = info.get("key", b"")
        self._signer = Signer(
            key.encode() if isinstance(key, str) else key,
            info.get("signature_scheme", "hmac-sha256"),
        )
        for channel, kind in _SOCKET_TYPES.items():
            sock = self._context.socket(kind)
            sock.setsockopt(zmq.LINGER, 0)
            # No high-water mark: ZeroMQ would drop iopub messages past it, silently. The
            # hub drains the sockets at once into bounded per-client queues instead.
            sock.setsockopt(zmq.RCVHWM, 0)
            if channel in ("shell", "stdin"):
                sock.setsockopt(zmq.IDENTITY, self._identity)
            if kind == zmq.SUB:
                sock.setsockopt(zmq.SUBSCRIBE, b"")
            sock.connect(_url(info, channel))
            self._sockets[channel] = sock
        self._iopub_seen = anyio.Event()
        self._readers_done = anyio.Event()
        await task_group.start(self._read_all)
        self._refusal = None
        if self._held:
            # Sent before iopub flows (ZeroMQ subscriptions take a moment), a held request's
            # outputs and idle status could be lost: wait for the kernel first.
            await self.wait_ready(_HELD_READY_WAIT)
        while self._held:  # messages held meanwhile keep their order
            held, self._held = self._held, []
            for message in held:
                await self._send(message)
        self._holding = False

    def hold(self) -> None:
        """Keep client messages back until the next :meth:`connect` (a restart begins)."""
        self._holding = True

    def refuse(self, reason: str) -> None:
        """The kernel is dead: answer every request, held or new, with an error reply."""
        self._refusal = reason
        self._held.clear()
        self.fail_pending(reason)

    async def disconnect(self) -> None:
        """Stop reading and close the sockets; slots stay, new client messages are held."""
        if self._readers is not None:
            self._readers.cancel()
            await self._readers_done.wait()
            self._readers = None
        for sock in self._sockets.values():
            sock.close(linger=0)
        self._sockets = {}
        self._fail_internal("the kernel's connection was closed")
        self._internal.clear()
        self._idle_waiters.clear()
        self._nudging = False

    async def wait_ready(
        self,
        timeout: float,  # noqa: ASYNC109 - returns, not raises
        *,
        channel: str = "shell",
    ) -> bool:
        """Nudge the kernel with ``kernel_info_request`` until it replies and iopub flows.

        ZeroMQ subscriptions take a moment to reach the kernel; until an iopub message
        arrives, output could be lost. Returns False if that takes over ``timeout`` seconds.
        ``channel="control"`` asks on the control channel, which a kernel busy running a
        cell still answers.
        """
        replied = anyio.Event()
        delay = 0.05
        with anyio.move_on_after(timeout):
            while True:
                await self._request("kernel_info_request", replied, channel)
                with anyio.move_on_after(delay):
                    await replied.wait()
                    await self._iopub_seen.wait()
                if replied.is_set() and self._iopub_seen.is_set():
                    return True
                delay = min(delay * 2, 1.0)
        return False

    async def nudge(self) -> None:
        """Ask for kernel_info so a newly attached client sees fresh status messages."""
        if self.connected and not self._nudging:
            self._nudging = True
            await self._request("kernel_info_request", anyio.Event())

    async def execute(
        self, code: str, on_output: Callable[[str, dict[str, Any]], None]
    ) -> dict[str, Any]:
        """Execute ``code`` for a server-side client; ``on_output(msg_type, content)`` gets
        its iopub messages (statuses aside). Returns the ``execute_reply`` content once idle."""
        content = {
            "code": code,
            "silent": False,
            "store_history": True,
            "user_expressions": {},
            "allow_stdin": False,
            "stop_on_error": True,
        }
        message = make_message("shell", "execute_request", content, session=self._session)
        self._listeners[message.msg_id] = on_output
        try:
            return await self._run_internal(message)
        finally:
            self._listeners.pop(message.msg_id, None)

    async def run_code(self, code: str) -> dict[str, Any]:
        """Execute ``code`` for the server itself (the seed notebook); no client sees it.

        Returns the ``execute_reply`` content once the kernel reported idle after it. The
        caller bounds the wait and watches the process: a kernel that dies never answers.
        """
        content = {
            "code": code,
            "silent": False,
            "store_history": False,
            "user_expressions": {},
            "allow_stdin": False,
            "stop_on_error": True,
        }
        message = make_message("shell", "execute_request", content, session=self._session)
        return await self._run_internal(message)

    async def call(
        self, channel: str, msg_type: str, content: dict[str, Any]
    ) -> dict[str, Any] | None:
        """Send a request of the hub's own (``interrupt_request``, ``shutdown_request`` on
        ``control``) and return the reply's content; the caller bounds the wait."""
        message = make_message(channel, msg_type, content, session=self._session)
        request = _Internal(anyio.Event())
        self._internal[message.msg_id] = request
        try:
            await self._send(message)
            await request.replied.wait()
        finally:
            self._internal.pop(message.msg_id, None)
        try:
            reply = request.reply.content() if request.reply is not None else None
        except ValueError:
            return None
        return reply if isinstance(reply, dict) else None

    async def _run_internal(self, message: Message) -> dict[str, Any]:
        request = _Internal(anyio.Event())
        idle = self._idle_waiters[message.msg_id] = anyio.Event()
        self._internal[message.msg_id] = request
        try:
            await self._send(message)
            await request.replied.wait()
            await idle.wait()
        finally:
            self._internal.pop(message.msg_id, None)
            self._idle_waiters.pop(message.msg_id, None)
        if request.failure is not None:
            return {
                "status": "error",
                "ename": "KernelDied",
                "evalue": request.failure,
                "traceback": [],
            }
        try:
            reply = request.reply.content() if request.reply is not None else None
        except ValueError:
            reply = None
        if not isinstance(reply, dict):
            return {"status": "error", "ename": "BadReply", "evalue": "unreadable execute_reply"}
        return reply

    async def _request(self, msg_type: str, replied: anyio.Event, channel: str = "shell") -> None:
        message = make_message(channel, msg_type, {}, session=self._session)
        self._internal[message.msg_id] = _Internal(replied, nudge=True)
        await self._send(message)

    # -- clients ------------------------------------------------------------------------------

    def slot(self, session_id: str) -> ClientSlot:
        """The slot of ``session_id``, made if new."""
        slot = self.slots.get(session_id)
        if slot is None:
            slot = self.slots[session_id] = ClientSlot(session_id, self.limits)
        return slot

    def attach(self, slot: ClientSlot, owner: SlotOwner) -> None:
        """Attach a connection; it first gets missed messages, then the current status."""
        slot.attach(owner, self.kernel_session)
        if self.execution_state in ("idle", "busy", "starting", "dead"):
            slot.push(self._status(self.execution_state))

    def detach(self, slot: ClientSlot, owner: SlotOwner, *, keep: bool, unclean: bool) -> None:
        """A connection closed; keep its slot for a reconnect only if ``keep``."""
        slot.detach(owner, unclean=unclean)
        if not keep and not slot.attached:
            self.discard(slot)

    def discard(self, slot: ClientSlot) -> None:
        """Forget a slot, its buffer and its requests in flight."""
        if self.slots.get(slot.session_id) is slot:
            del self.slots[slot.session_id]
        for msg_id in [key for key, pending in self._pending.items() if pending.slot is slot]:
            del self._pending[msg_id]

    def expire(self, window: float) -> None:
        """Discard slots detached for longer than ``window`` seconds."""
        now = time.monotonic()
        for slot in list(self.slots.values()):
            if slot.detached_at is not None and now - slot.detached_at >= window:
                self.discard(slot)

    def close_all(self, code: int, reason: str) -> None:
        """Ask every attached connection to close (kernel gone, server stopping)."""
        for slot in list(self.slots.values()):
            if slot.owner is not None:
                slot.owner.close_soon(code, reason)

    async def send(self, slot: ClientSlot, message: Message) -> None:
        """Forward a client's message to the kernel, remembering requests for the reply."""
        if message.msg_type not in UNTRACKED_MESSAGE_TYPES:
            self.client_activity = time.time()
        if message.msg_type.endswith("_request"):
            self._pending[message.msg_id] = _Pending(
                slot, message.channel, message.msg_type, bytes(message.parts[0])
            )
            if message.msg_type == "execute_request":
                slot.executed(message.msg_id)
        elif message.msg_type == "input_reply":
            answered = message.parent.get("msg_id")
            if isinstance(answered, str):
                slot.answered(answered)
        if self._refusal is not None:
            pending = self._pending.pop(message.msg_id, None)
            if pending is not None:
                self._fail(pending, self._refusal)
            return
        if self._holding or not self._sockets:
            self._hold(slot, message)
            return
        await self._send(message)

    def _hold(self, slot: ClientSlot, message: Message) -> None:
        if len(self._held) < _HELD_LIMIT:
            self._held.append(message)
            return
        pending = self._pending.pop(message.msg_id, None)
        if pending is not None:
            self._fail(pending, f"too many messages ({_HELD_LIMIT}) wait for the kernel")

    async def _send(self, message: Message) -> None:
        channel = message.channel
        sock = self._sockets.get(channel)
        if sock is None:
            self._held.append(message)  # only the hub's own requests get here
            return
        parts = to_zmq(message, self._signer)
        while True:
            try:
                sock.send_multipart(parts, zmq.NOBLOCK, copy=False)
                break
            except zmq.Again:  # the kernel is not reading (high-water mark): wait for it
                self._drain(channel, sock, limit=None)
                await anyio.sleep(0.01)
                if self._sockets.get(channel) is not sock:  # a restart began meanwhile
                    self._held.append(message)
                    return
        # Sending may swallow the descriptor's signal for messages that arrived meanwhile.
        self._drain(channel, sock, limit=None)

    # -- the kernel going away ----------------------------------------------------------------

    def fail_pending(self, reason: str) -> None:
        """Answer every request in flight with an error reply (and an idle status), the
        hub's own ones too."""
        self._fail_internal(reason)
        held_ids = {message.msg_id for message in self._held}
        for msg_id, pending in list(self._pending.items()):
            if msg_id in held_ids:
                continue  # not sent yet: it will reach the next kernel
            del self._pending[msg_id]
            self._fail(pending, reason)

    def _fail_internal(self, reason: str) -> None:
        """End the waits of the hub's own requests (server-side executions, control calls)
        that the kernel will not answer now; their callers get an error reply, or None."""
        for msg_id, request in list(self._internal.items()):
            if request.nudge:
                continue
            if not request.replied.is_set():
                request.failure = reason
                request.replied.set()
            waiter = self._idle_waiters.get(msg_id)
            if waiter is not None:
                waiter.set()

    def _fail(self, pending: _Pending, reason: str) -> None:
        reply_type = pending.msg_type.removesuffix("_request") + "_reply"
        content: dict[str, Any] = {
            "status": "error",
            "ename": "KernelDied",
            "evalue": reason,
            "traceback": [],
        }
        if reply_type == "execute_reply":
            content["execution_count"] = None
        reply = make_message(
            pending.channel, reply_type, content, session=self.kernel_session, parent=pending.header
        )
        pending.slot.push(reply)
        if pending.channel == "shell":
            idle = make_message(
                "iopub",
                "status",
                {"execution_state": "idle"},
                session=self.kernel_session,
                parent=pending.header,
            )
            pending.slot.push(idle)

    def broadcast_status(self, state: str) -> None:
        """Tell every client the kernel is ``restarting``, ``starting`` or ``dead``."""
        self.execution_state = state
        message = self._status(state)
        for slot in self.slots.values():
            slot.push(message)

    def _status(self, state: str) -> Message:
        return make_message(
            "iopub", "status", {"execution_state": state}, session=self.kernel_session
        )

    # -- reading ------------------------------------------------------------------------------

    async def _read_all(self, *, task_status: anyio.abc.TaskStatus[None]) -> None:
        try:
            with anyio.CancelScope() as scope:
                self._readers = scope
                async with anyio.create_task_group() as group:
                    for channel, sock in self._sockets.items():
                        group.start_soon(self._read, channel, sock)
                    task_status.started()
        finally:
            self._readers_done.set()

    async def _read(self, channel: str, sock: zmq.Socket[bytes]) -> None:
        # ZeroMQ's descriptor is edge-triggered: it signals when the socket's state changes,
        # not while messages wait. So every use of the socket (here, and after each send)
        # drains it until ZMQ_EVENTS shows nothing to read; only then is waiting safe. A
        # burst of output costs one event-loop wakeup and no future per message.
        # The descriptor stays registered with the event loop for the socket's life and the
        # loop calls back into the drain directly: no task switch, future or epoll_ctl per
        # wakeup (a registration per wait costs two system calls). A burst longer than
        # _BURST messages goes on in a later loop iteration, so other kernels get their turn.
        #
        # A kernel printing in a loop sends one message per print, each its own wakeup here,
        # write to the client and, in between, ZeroMQ I/O-thread handoff: most of the
        # server's cost per message. So once iopub has woken us _PACE_AFTER times in a row
        # within _PACE seconds, each time ending on an output, it is read once per _PACE
        # instead (the descriptor leaves the loop meanwhile): a batch per tick, at most
        # _PACE late. A status message (the kernel going idle) ends the pacing; a round trip
        # (busy, input, result, idle) never starts it.
        fd = int(sock.getsockopt(zmq.FD))
        loop = asyncio.get_running_loop()
        closed = anyio.Event()
        scheduled = False
        paces = channel == "iopub"
        quick_wakeups = 0
        last_wakeup = 0.0
        resume_handle: asyncio.TimerHandle | None = None

        def readable() -> None:
            nonlocal scheduled, quick_wakeups, last_wakeup, resume_handle
            scheduled = False
            if closed.is_set():
                return
            try:
                more = self._drain(channel, sock, limit=_BURST)
            except zmq.ZMQError as exc:  # the socket or context closed under us
                log.debug("kernel %s: %s socket closed: %s", self.kernel_id, channel, exc)
                closed.set()
                return
            if more and not scheduled:
                scheduled = True
                loop.call_soon(readable)
            elif paces:
                now = loop.time()
                if not self._output_last:
                    quick_wakeups = 0
                elif resume_handle is not None or now - last_wakeup < _PACE:
                    quick_wakeups += 1
                else:
                    quick_wakeups = 1
                last_wakeup = now
                resume_handle = None
                if quick_wakeups >= _PACE_AFTER:
                    loop.remove_reader(fd)
                    resume_handle = loop.call_later(_PACE, resume)

        def resume() -> None:
            if not closed.is_set():
                loop.add_reader(fd, readable)
                readable()

        loop.add_reader(fd, readable)
        try:
            readable()
            await closed.wait()
        finally:
            closed.set()  # a later call_soon must not touch a socket about to close
            if resume_handle is not None:
                resume_handle.cancel()
            loop.remove_reader(fd)

    def _drain(self, channel: str, sock: zmq.Socket[bytes], *, limit: int | None) -> bool:
        """Read and route queued messages, then hand each client its share in one go; True
        if ``limit`` stopped it before the end."""
        try:
            return self._read_batch(channel, sock, limit)
        finally:
            for slot in self.slots.values():
                slot.flush()

    def _read_batch(self, channel: str, sock: zmq.Socket[bytes], limit: int | None) -> bool:
        # Reading until EAGAIN and then checking ZMQ_EVENTS once, with each frame's ``more``
        # flag instead of ZMQ_RCVMORE, costs less than half of asking ZMQ_EVENTS before each
        # message and using recv_multipart (every option read builds an enum in pyzmq).
        recv, get, receive = sock.recv, sock.get, self._receive
        count = 0
        while True:
            if limit is not None and count >= limit:
                return True
            try:
                frame = recv(_NOBLOCK, copy=False)
            except zmq.Again:
                if int(get(_EVENTS)) & _POLLIN:
                    continue
                return False
            frames: list[Part] = [frame.bytes]
            while frame.more:
                frame = recv(_NOBLOCK, copy=False)
                # A large part stays in ZeroMQ's buffer (a view keeps it alive), uncopied.
                frames.append(frame.bytes if len(frame) < _COPY_BELOW else frame.buffer)
            receive(channel, frames)
            count += 1

    def _receive(self, channel: str, frames: list[Part]) -> None:
        try:
            message = from_zmq(channel, frames, self._signer)
        except ValueError as exc:
            log.warning("kernel %s: dropped a %s message: %s", self.kernel_id, channel, exc)
            return
        try:
            self._dispatch(message)
        except Exception:
            log.exception("kernel %s: failed to route a %s message", self.kernel_id, channel)

    def _dispatch(self, message: Message) -> None:
        session = message.header.get("session")
        if isinstance(session, str):
            self.kernel_session = session
        if message.channel == "iopub":
            self._iopub_seen.set()
            self._output_last = message.msg_type != "status"
            if message.msg_type == "status":
                self._track_status(message)
                if self._idle_waiters:
                    self._wake_idle_waiter(message)
            else:
                self.last_activity = time.time()
                if self._listeners:
                    self._to_listener(message)
            for slot in self.slots.values():
                slot.push(message, batched=True)
            return
        parent_id = message.parent.get("msg_id")
        internal = self._internal.pop(parent_id, None) if parent_id else None
        if internal is not None:
            self._on_internal_reply(message)
            internal.reply = message
            internal.replied.set()
            return
        if message.channel == "stdin":
            pending = self._pending.get(parent_id) if parent_id else None
        else:
            pending = self._pending.pop(parent_id, None) if parent_id else None
        if pending is None or self.slots.get(pending.slot.session_id) is not pending.slot:
            log.debug("kernel %s: no client for %s", self.kernel_id, message.msg_type)
            return
        pending.slot.push(message, batched=True)

    def _to_listener(self, message: Message) -> None:
        parent_id = message.parent.get("msg_id")
        listener = self._listeners.get(parent_id) if isinstance(parent_id, str) else None
        if listener is None:
            return
        try:
            content = message.content()
        except ValueError:
            return
        if isinstance(content, dict):
            listener(message.msg_type, content)

    def _on_internal_reply(self, message: Message) -> None:
        if message.msg_type == "kernel_info_reply":
            self._nudging = False
            content = message.content()
            if isinstance(content, dict):
                self.kernel_info = content

    def _wake_idle_waiter(self, message: Message) -> None:
        parent_id = message.parent.get("msg_id")
        waiter = self._idle_waiters.get(parent_id) if isinstance(parent_id, str) else None
        if waiter is None:
            return
        try:
            state = message.content().get("execution_state")
        except (ValueError, AttributeError):
            return
        if state == "idle":
            waiter.set()

    def _track_status(self, message: Message) -> None:
        try:
            state = message.content().get("execution_state")
        except (ValueError, AttributeError):
            return
        if not isinstance(state, str):
            return
        if message.parent.get("msg_type") in UNTRACKED_MESSAGE_TYPES:
            if self.execution_state == "starting" and state != "starting":
                self.execution_state = "idle"
            return
        self.execution_state = state
        self.last_activity = time.time()


def _url(info: dict[str, Any], channel: str) -> str:
    port = info[f"{channel}_port"]
    if info.get("transport", "tcp") == "ipc":
        return f"ipc://{info['ip']}-{port}"
    return f"tcp://{info['ip']}:{port}"
