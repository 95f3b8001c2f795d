"""A kernel's clients as the hub sees them: one :class:`ClientSlot` per ``session_id``.

A slot outlives the WebSocket that filled it, so a client that reconnects with the same
``session_id`` gets what it missed. States::

    attached  --WebSocket closes-->  detached  --reconnect within the window-->  attached
                                         |
                                         +--window passes / clean close--> discarded

The slot's outbox is the only queue between the hub and a client. While attached, the
connection's writer drains it. The hub reads a kernel's messages in batches (all that are
ready at one event-loop wakeup); it pushes each batch with ``batched=True`` and then calls
:meth:`ClientSlot.flush`, which hands the whole batch to the connection at once when it can
write without waiting (one system call, no task switch), and wakes its writer otherwise. If
more than ``client_queue_bytes`` wait behind the message
being sent (on top of what was replayed at attach time and is still draining), the client is
too slow and is closed (it may reconnect and resume). While
detached, the outbox is the replay buffer: past ``replay_buffer_bytes`` the oldest outputs
are dropped (down to three quarters of the limit, so trimming is rare) and counted, and the
client is told how many on reconnect. Statuses and replies are kept: a reply can overtake
the outputs before it (it comes on another channel), and dropping it would hang the cell.

Behind several servers a client may come back through another one, which delivers the
kernel's output itself. A detached slot that sees, on iopub, the output of code its client
did not run through this server knows the client lives elsewhere: it empties its
buffer and replays nothing if the client comes back here (all it held went to the client
through the other server).

What was handed to the network just before a connection died may never have arrived (the
Jupyter protocol has no acknowledgements). So the slot remembers the statuses, replies and
unanswered ``input_request`` messages it sent in the last ``RESEND_WINDOW`` seconds, and
sends them again first when the client comes back after an unclean close: a duplicate
status or reply is harmless, a lost one leaves a cell waiting forever. Outputs (streams,
displays) are not re-sent, as duplicates would show.
"""

from __future__ import annotations

import asyncio
import time
from collections import deque
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Protocol

from junction.plugins.kernels.wire import Message, make_message

__all__ = ["RESEND_WINDOW", "SLOW_CLIENT", "ClientSlot", "SlotLimits", "SlotOwner"]

SLOW_CLIENT = 1013
"""Close code for a client that fell too far behind (RFC 6455: try again later)."""

RESEND_WINDOW = 90.0
"""Seconds of sent statuses and replies re-sent after an unclean close; longer than it takes
uvicorn's keepalive pings (20 s interval, 20 s timeout) to notice a silently dead peer."""

_RESEND_COUNT = 64
_RESEND_MAX_SIZE = 64 * 1024
_OWN_EXECUTES = 4096


class SlotOwner(Protocol):
    """What a slot needs from the connection attached to it."""

    def close_soon(self, code: int, reason: str, *, unclean: bool = False) -> None:
        """Ask the connection to close with ``code`` and ``reason``; returns at once.

        ``unclean``: what was sent may not have arrived even so (the client replaced it).
        """
        ...

    async def wait_stopped(self) -> None:
        """Return once the connection no longer takes messages from the slot."""
        ...

    def write_now(self, messages: Iterable[Message]) -> int:
        """Write the first of ``messages`` (the head of the outbox) without waiting; returns
        how many were written, 0 when the connection cannot write synchronously now."""
        ...


@dataclass(frozen=True, slots=True)
class SlotLimits:
    """Bounds on what one client may hold in memory."""

    client_queue_bytes: int
    replay_buffer_bytes: int


class ClientSlot:
    """One client of one kernel: its current connection (if any) and its outbox."""

    def __init__(self, session_id: str, limits: SlotLimits) -> None:
        self.session_id = session_id
        self.limits = limits
        self.owner: SlotOwner | None = None
        self.outbox: deque[Message] = deque()
        self.outbox_bytes = 0
        self.detached_at: float | None = time.monotonic()
        self.dropped = 0
        self._dropped_parent = b"{}"
        # One event for the slot's life, cleared before each wait: a new event per wait
        # costs more than the rest of a small message's way to the writer.
        self._wakeup = asyncio.Event()
        self._slow = False
        self._sent: deque[tuple[float, Message]] = deque(maxlen=_RESEND_COUNT)
        self._resend = False
        self._replaying = 0
        self._executes: dict[str, None] = {}  # insertion-ordered: the oldest go first
        self._elsewhere = False
        self._batched = False

    @property
    def attached(self) -> bool:
        """Whether a WebSocket is attached."""
        return self.owner is not None

    def push(self, message: Message, *, batched: bool = False) -> None:
        """Queue a message for this client; never blocks, never grows without bound.

        ``batched``: more may follow at once, and :meth:`flush` comes after the last one.
        """
        owner = self.owner
        if owner is None and (self._elsewhere or self._answers_elsewhere(message)):
            return
        self.outbox.append(message)
        self.outbox_bytes += message.size
        if owner is None:
            self._trim()
            return
        if batched:
            self._batched = True
        else:
            self._wakeup.set()
        waiting = self.outbox_bytes - self.outbox[0].size - self._replaying
        if waiting > self.limits.client_queue_bytes and not self._slow:
            self._slow = True
            owner.close_soon(
                SLOW_CLIENT,
                f"client too slow: {waiting} bytes of kernel output waiting; reconnect "
                "with the same session_id to resume",
            )

    def flush(self) -> None:
        """Hand what batched pushes queued to the connection now; what it cannot take
        without waiting is left to its writer."""
        if not self._batched:
            return
        self._batched = False
        self.hand_over()
        if self.outbox and self.owner is not None:
            self._wakeup.set()

    def hand_over(self) -> None:
        """Give the connection as much of the outbox as it writes without waiting."""
        owner, outbox, sent = self.owner, self.outbox, self.sent
        if owner is None or not outbox:
            return
        for _ in range(owner.write_now(outbox)):
            sent(outbox[0])

    def executed(self, msg_id: str) -> None:
        """The client sent ``execute_request`` ``msg_id`` through this server."""
        self._executes[msg_id] = None
        if len(self._executes) > _OWN_EXECUTES:
            del self._executes[next(iter(self._executes))]

    def attach(self, owner: SlotOwner, kernel_session: str) -> None:
        """Give the slot to a new connection; a note about dropped messages goes first."""
        self.owner = owner
        self._slow = False
        self._elsewhere = False
        if self.dropped:
            notice = make_message(
                "iopub",
                "stream",
                {
                    "name": "stderr",
                    "text": f"[junction] {self.dropped} kernel messages for this client were "
                    "dropped while it was disconnected (the replay buffer, "
                    f"kernels.replay_buffer_bytes = {self.limits.replay_buffer_bytes}, "
                    "was full).\n",
                },
                session=kernel_session,
                parent=self._dropped_parent,
            )
            self.outbox.appendleft(notice)
            self.outbox_bytes += notice.size
            self.dropped = 0
        if self._resend:
            for message in reversed(list(self._recently_sent())):
                self.outbox.appendleft(message)
                self.outbox_bytes += message.size
        self._resend = False
        self._sent.clear()
        self._replaying = self.outbox_bytes
        self.detached_at = None
        self._wakeup.set()

    def detach(self, owner: SlotOwner, *, unclean: bool) -> None:
        """The connection ``owner`` is gone; keep the outbox as the replay buffer.

        ``unclean``: the close did not prove the client got what was sent (the peer vanished
        or closed on its own), so recent statuses and replies are sent again on reconnect.
        """
        if self.owner is owner:
            self.owner = None
            self.detached_at = time.monotonic()
            self._resend = unclean
            self._trim()
            self._wakeup.set()

    def answered(self, request_id: str) -> None:
        """The client replied to ``input_request`` ``request_id``; never re-send it."""
        for entry in list(self._sent):
            if entry[1].msg_id == request_id:
                self._sent.remove(entry)

    async def wait_message(self, owner: SlotOwner) -> Message | None:
        """The next message for ``owner`` to send, once there is one; None if it lost the slot.

        The message stays queued until :meth:`sent` confirms it, so a connection that drops
        mid-send leaves it for the next one.
        """
        while not self.outbox or self.owner is not owner:
            if self.owner is not owner:
                return None
            self._wakeup.clear()
            await self._wakeup.wait()
        return self.outbox[0]

    def sent(self, message: Message) -> None:
        """``message`` (the head of the outbox) reached the client."""
        if self.outbox and self.outbox[0] is message:
            self.outbox.popleft()
            self.outbox_bytes -= message.size
            self._replaying = max(0, self._replaying - message.size)
            if (
                message.channel != "iopub" or message.msg_type == "status"
            ) and message.size <= _RESEND_MAX_SIZE:
                self._sent.append((time.monotonic(), message))

    def _answers_elsewhere(self, message: Message) -> bool:
        """Whether ``message`` is the output of code this client ran through another server;
        if so, forget what was kept for it (the other server delivered it all)."""
        if message.channel != "iopub":
            return False
        parent = message.parent
        msg_id = parent.get("msg_id")
        if (
            parent.get("msg_type") != "execute_request"
            or parent.get("session") != self.session_id
            or not isinstance(msg_id, str)
            or msg_id in self._executes
        ):
            return False
        self._elsewhere = True
        self.outbox.clear()
        self.outbox_bytes = 0
        self.dropped = 0
        self._resend = False
        self._sent.clear()
        return True

    def _recently_sent(self) -> Iterator[Message]:
        since = (self.detached_at or time.monotonic()) - RESEND_WINDOW
        return (message for moment, message in self._sent if moment >= since)

    def _trim(self) -> None:
        limit = self.limits.replay_buffer_bytes
        if self.outbox_bytes <= limit:
            return
        excess = self.outbox_bytes - limit * 3 // 4
        kept: deque[Message] = deque()
        for message in self.outbox:
            if excess > 0 and message.channel == "iopub" and message.msg_type != "status":
                excess -= message.size
                self._drop(message)
            else:
                kept.append(message)
        self.outbox = kept
        while self.outbox and self.outbox_bytes > limit:  # only statuses and replies left
            self._drop(self.outbox.popleft())

    def _drop(self, message: Message) -> None:
        self.outbox_bytes -= message.size
        self.dropped += 1
        self._dropped_parent = bytes(message.parts[1])
