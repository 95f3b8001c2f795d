"""``Room``: one shared Yjs document and the clients connected to it.

A room answers the sync protocol (``protocol.py``): a client's SyncStep1 gets a SyncStep2
with what it lacks; its SyncStep2 and updates are applied to the room's document, and every
change of the document, whoever made it (a client, the disk, a kernel's output), goes to
every client as an update, the sender included. Awareness is relayed to every client, the
sender included, and a client's awareness states are removed for all when it leaves; a
connection owns the awareness ids it announced first and may change only those, a few of them,
each of bounded size.

Each client has a bounded outbox drained by its connection; a client that falls too far
behind is disconnected (it reconnects and syncs again), so one slow client never holds the
others back. :class:`~junction.plugins.collaboration.document.DocumentRoom` adds the file.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import anyio
from anyio.streams.memory import MemoryObjectReceiveStream, MemoryObjectSendStream

from junction.plugins.collaboration.protocol import (
    AWARENESS,
    QUERY_AWARENESS,
    RAW,
    SYNC,
    SYNC_STEP1,
    SYNC_STEP2,
    SYNC_UPDATE,
    AwarenessEntry,
    ProtocolError,
    Reader,
    awareness_message,
    parse_awareness,
    raw_message,
    sync_message,
)

__all__ = [
    "MAX_AWARENESS_IDS",
    "MAX_AWARENESS_STATE",
    "OUTBOX_SIZE",
    "Client",
    "ClientClosed",
    "Room",
]

if TYPE_CHECKING:
    from pycrdt import Doc, Subscription, TransactionEvent

    from junction.auth.identity import User

log = logging.getLogger("junction.collaboration")

OUTBOX_SIZE = 4096
"""Messages waiting for one client before it counts as too slow and is disconnected."""

MAX_AWARENESS_IDS = 4
"""Awareness client ids one connection may announce; further ids are ignored."""

MAX_AWARENESS_STATE = 16 * 1024
"""Bytes of one awareness state; a larger one disconnects its sender (1009)."""

PROTOCOL_ERROR = 1002
POLICY_VIOLATION = 1008
MESSAGE_TOO_BIG = 1009
TRY_AGAIN_LATER = 1013
_EMPTY_UPDATE = b"\x00\x00"


class ClientClosed(Exception):
    """Raised out of :meth:`Room.handle` when the room closed the client (read-only, bad frame)."""

    def __init__(self, code: int, reason: str) -> None:
        super().__init__(reason)
        self.code = code
        self.reason = reason


@dataclass(eq=False)
class Client:
    """One WebSocket in a room: its user, its outbox and the awareness client ids it announced."""

    read_only: bool = False
    user: User | None = None
    """Who connected (multi-user mode: what the room opens is judged against their reach)."""
    awareness_ids: set[int] = field(default_factory=set)
    closing: tuple[int, str] | None = None
    closed: anyio.Event = field(default_factory=anyio.Event)
    step2_seen: int = 0
    """How many SyncStep2 messages it sent (answers to the server's SyncStep1)."""

    def __post_init__(self) -> None:
        streams = anyio.create_memory_object_stream[bytes](OUTBOX_SIZE)
        self.outbox: MemoryObjectSendStream[bytes] = streams[0]
        self.inbox: MemoryObjectReceiveStream[bytes] = streams[1]

    def push(self, message: bytes) -> None:
        """Queue ``message`` for this client; disconnect it when its outbox is full."""
        if self.closing is not None:
            return
        try:
            self.outbox.send_nowait(message)
        except anyio.WouldBlock:
            self.close(TRY_AGAIN_LATER, "client too slow")
        except (anyio.ClosedResourceError, anyio.BrokenResourceError):
            pass

    def close(self, code: int, reason: str) -> None:
        """Ask the connection to close with ``code``; returns at once."""
        if self.closing is None:
            self.closing = (code, reason)
            self.closed.set()
            self.outbox.close()  # the writer sends what is queued, then the close frame


class Room:
    """A shared document in memory and its clients; no file (the global awareness room)."""

    def __init__(self, room_id: str, doc: Doc[Any] | None = None) -> None:
        from pycrdt import Doc  # pycrdt loads with the first room, not at startup

        self.id = room_id
        self.doc = doc if doc is not None else Doc()
        self.clients: set[Client] = set()
        self.members: tuple[Client, ...] = ()
        """:attr:`clients` as a tuple, replaced on each join and leave (safe to read from
        worker threads)."""
        self.last_members: tuple[Client, ...] = ()
        """The client connected last, once the room is empty."""
        self.last_writers: tuple[Client, ...] = ()
        """The writing client connected last, once no writing client is left."""
        self.awareness: dict[int, AwarenessEntry] = {}
        self._owners: dict[int, Client] = {}
        self._pending: list[bytes] = []
        self._subscription: Subscription | None = None
        self._flush_lock = anyio.Lock()
        self.received = 0
        """How many client updates were applied."""
        self._answered = anyio.Event()
        self.on_empty: Callable[[Room], None] | None = None

    # -- the document -----------------------------------------------------------------------

    def observe(self) -> None:
        """Start collecting the document's updates for broadcast (after it is loaded)."""
        self._subscription = self.doc.observe(self._collect)

    def _collect(self, event: TransactionEvent) -> None:
        update: bytes = event.update
        if update != _EMPTY_UPDATE:
            self._pending.append(update)

    async def flush(self) -> None:
        """Store (see :meth:`persist`) and broadcast every change made since the last flush.

        Called after each change: a client's update, output from a kernel, the disk.
        """
        # Shielded: updates taken from the queue are stored and sent even when the caller
        # is cancelled meanwhile (a run ending, a client leaving), or they would be lost.
        with anyio.CancelScope(shield=True):
            async with self._flush_lock:
                if not self._pending:
                    return
                updates, self._pending = self._pending, []
                await self.persist(updates)
                for update in updates:
                    self.broadcast(sync_message(SYNC_UPDATE, update))

    async def persist(self, updates: list[bytes]) -> None:
        """Keep ``updates`` before any client sees them; memory rooms keep nothing."""

    def changed(self, *, by_client: bool) -> None:
        """A change reached the document; rooms with a file schedule a save."""

    # -- clients ----------------------------------------------------------------------------

    def join(self, client: Client) -> None:
        """Add a client: it gets our SyncStep1 and everyone's awareness first."""
        self.clients.add(client)
        self.members = tuple(self.clients)
        client.push(sync_message(SYNC_STEP1, self.doc.get_state()))
        if self.awareness:
            client.push(awareness_message(list(self.awareness.values())))

    async def admit(self, client: Client) -> bool:
        """Join ``client`` when it may be here (see :meth:`join`); False when it may not."""
        self.join(client)
        return True

    def leave(self, client: Client) -> None:
        """Remove a client and, for everyone left, the awareness states it announced."""
        if client in self.clients:
            self.clients.discard(client)
            self.members = tuple(self.clients)
            if not self.members:
                self.last_members = (client,)
            if not client.read_only and all(c.read_only for c in self.members):
                self.last_writers = (client,)
        self._answered.set()
        gone = []
        for client_id in client.awareness_ids:
            if self._owners.get(client_id) is client:
                del self._owners[client_id]
            entry = self.awareness.pop(client_id, None)
            if entry is not None:
                gone.append(AwarenessEntry(client_id, entry.clock + 1, "null"))
        if gone:
            self.broadcast(awareness_message(gone))
        if not self.clients and self.on_empty is not None:
            self.on_empty(self)

    async def catch_up(self, limit: float) -> None:
        """Get from every writing client what it holds and the room lacks, then return.

        Sends each a SyncStep1 with the room's state and waits (``limit`` seconds at most) for its
        SyncStep2: a client answers once it has handled every message before ours, and its
        answer holds every edit it made until then, so edits made before a request sent on
        another connection (running a cell) are in the room when this returns.
        """
        expected = {c: c.step2_seen + 1 for c in self.clients if not c.read_only}
        if not expected:
            return
        message = sync_message(SYNC_STEP1, self.doc.get_state())
        for client in expected:
            client.push(message)
        with anyio.move_on_after(limit):
            while any(c in self.clients and c.step2_seen < n for c, n in expected.items()):
                self._answered = anyio.Event()
                await self._answered.wait()

    def broadcast(self, message: bytes) -> None:
        """Queue ``message`` for every client."""
        for client in list(self.clients):
            client.push(message)

    def close_all(self, code: int, reason: str) -> None:
        """Ask every client to disconnect (file deleted, server stopping)."""
        for client in list(self.clients):
            client.close(code, reason)

    async def handle(self, client: Client, frame: bytes) -> None:
        """Act on one frame from ``client``.

        Raises :class:`ClientClosed` when the client must be disconnected: a malformed frame
        (1002), an update from a read-only client (1008), an awareness state above
        :data:`MAX_AWARENESS_STATE` (1009).
        """
        try:
            reader = Reader(frame)
            kind = reader.uint()
            if kind == SYNC:
                await self._sync(client, reader.uint(), reader.bytes())
            elif kind == AWARENESS:
                self._awareness(client, reader.bytes())
            elif kind == QUERY_AWARENESS:
                client.push(awareness_message(list(self.awareness.values())))
            elif kind == RAW:
                await self._raw(client, reader)
            # other message types are y-protocols extensions this server does not use
        except ProtocolError as exc:
            raise ClientClosed(PROTOCOL_ERROR, f"malformed message: {exc}") from None

    async def _sync(self, client: Client, sub_type: int, payload: bytes) -> None:
        if sub_type == SYNC_STEP1:
            try:
                update = self.doc.get_update(payload)
            except ValueError as exc:
                raise ProtocolError(str(exc)) from None
            client.push(sync_message(SYNC_STEP2, update))
            return
        if sub_type not in (SYNC_STEP2, SYNC_UPDATE):
            raise ProtocolError(f"unknown sync message type {sub_type}")
        if sub_type == SYNC_STEP2:
            try:
                await self._apply(client, sub_type, payload)
            finally:
                client.step2_seen += 1
                self._answered.set()
            return
        await self._apply(client, sub_type, payload)

    async def _apply(self, client: Client, sub_type: int, payload: bytes) -> None:
        if payload == _EMPTY_UPDATE:
            return
        if client.read_only:
            if sub_type == SYNC_STEP2:
                return  # a read-only client's offer of what it holds: not taken
            raise ClientClosed(POLICY_VIOLATION, "this document is read-only for you")
        before = len(self._pending)
        try:
            self.doc.apply_update(payload)
        except ValueError as exc:
            raise ProtocolError(f"bad update: {exc}") from None
        self.received += 1
        if len(self._pending) > before:
            self.changed(by_client=True)
        await self.flush()

    def _awareness(self, client: Client, payload: bytes) -> None:
        """Take the entries ``client`` may set: ids it owns (the first connection to announce
        an id owns it until it leaves), at most :data:`MAX_AWARENESS_IDS` of them, with a
        clock that moves forward; other entries are dropped without a word."""
        accepted = []
        for entry in parse_awareness(payload):
            if len(entry.state.encode()) > MAX_AWARENESS_STATE:
                raise ClientClosed(
                    MESSAGE_TOO_BIG, f"awareness state above {MAX_AWARENESS_STATE} bytes"
                )
            owner = self._owners.get(entry.client_id)
            if owner is None:
                if entry.state == "null" or len(client.awareness_ids) >= MAX_AWARENESS_IDS:
                    continue
                self._owners[entry.client_id] = client
            elif owner is not client:
                continue
            current = self.awareness.get(entry.client_id)
            if current is not None and (
                entry.clock < current.clock
                or (entry.clock == current.clock and entry.state != "null")
            ):
                continue
            if entry.state == "null":
                self.awareness.pop(entry.client_id, None)
                client.awareness_ids.discard(entry.client_id)
                del self._owners[entry.client_id]
            else:
                self.awareness[entry.client_id] = entry
                client.awareness_ids.add(entry.client_id)
            accepted.append(entry)
        if accepted:
            self.broadcast(awareness_message(accepted))

    async def _raw(self, client: Client, reader: Reader) -> None:
        command = reader.string()
        if command == "save":
            request_id = reader.uint()
            status = await self.save_now()
            client.push(raw_message({"type": "save", "responseTo": request_id, "status": status}))

    async def save_now(self) -> str:
        """Save at once, for a client's RAW ``save``: ``success``, ``skipped`` or ``failed``."""
        return "skipped"

    def dispose(self) -> None:
        """Stop observing the document (the room is closing)."""
        if self._subscription is not None:
            self.doc.unobserve(self._subscription)
            self._subscription = None
