"""HTTP/1.1 forwarding to apps: ``h11`` over asyncio sockets, with pooled keep-alive connections.

:class:`Forwarder` sends one request to an :class:`Upstream` (a loopback TCP port or a Unix
socket) and hands back a :class:`Response` whose body is read as the caller consumes it.
Nothing is buffered whole: the request body is written chunk by chunk as the caller's
iterator yields it (each write waits while the socket's buffer is full), and the response
body is taken from the socket only as the caller asks for the next chunk (reading pauses
past :data:`_BUFFER_LIMIT` unread bytes).

Connections, per upstream:

- idle ones wait in a LIFO list (the most recently used first: it is the least likely to
  have been closed by the app's keep-alive timeout); taking and returning one is O(1);
  at most ``max_idle`` wait, and one idle for more than ``idle_seconds`` is closed;
- a connection goes back to the list only after a response read to its end on a connection
  both sides keep open (no ``Connection: close``, no HTTP/1.0 app); any error, timeout,
  cancellation or a response left unread closes it;
- a request on a reused connection that the app closed before answering (the race with its
  keep-alive timeout) is sent again on a new connection, once, if its method is idempotent
  and it has no body (a body iterator cannot be replayed).

Nothing here keeps state from one request for another but the sockets: no cookie jar, no
authentication, no redirects. The caller chooses every header sent.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections import deque
from collections.abc import AsyncIterator, Callable, Iterable
from dataclasses import dataclass
from types import TracebackType
from typing import cast

import h11

__all__ = [
    "Forwarder",
    "InvalidRequest",
    "Response",
    "Upstream",
    "UpstreamClosed",
    "UpstreamError",
    "UpstreamTimeout",
    "UpstreamUnreachable",
]

_BUFFER_LIMIT = 256 * 1024
"""Unread bytes from an app past which reading its socket pauses."""
_MAX_HEADERS = 64 * 1024
_IDEMPOTENT = frozenset({b"GET", b"HEAD", b"OPTIONS", b"TRACE", b"PUT", b"DELETE"})


class InvalidRequest(ValueError):
    """The request can't be written as HTTP/1.1 (a header value with a control character,
    a target with a space): the client's fault, nothing was sent."""


class UpstreamError(ConnectionError):
    """The app could not be reached or broke the exchange before its response began."""


class UpstreamUnreachable(UpstreamError):
    """Nothing accepted the connection (refused, no such socket)."""


class UpstreamClosed(UpstreamError):
    """The app closed the connection or sent something that is not HTTP/1.1."""


class UpstreamTimeout(UpstreamError, TimeoutError):
    """The app did not accept the connection, read the request or begin its response in
    time."""


@dataclass(frozen=True, slots=True)
class Upstream:
    """Where an app listens: ``host`` and ``port``, or the Unix socket at ``path``."""

    host: str = "127.0.0.1"
    port: int = 0
    path: str | None = None

    @property
    def authority(self) -> str:
        """The ``Host`` header value naming this upstream (when the caller sends none)."""
        return "localhost" if self.path is not None else f"{self.host}:{self.port}"


class _Connection(asyncio.Protocol):
    """One socket to an app with its HTTP/1.1 state machine.

    A protocol rather than asyncio's streams: the bytes the socket delivers go to ``h11``
    as they are, with no stream buffer copying and compacting them in between. Reading
    pauses while more than :data:`_BUFFER_LIMIT` bytes wait unread (backpressure on the app);
    :meth:`send` waits while the socket's write buffer is full (backpressure on the caller).
    """

    def __init__(self) -> None:
        self.h11 = h11.Connection(h11.CLIENT, max_incomplete_event_size=_MAX_HEADERS)
        self.idle_since = 0.0
        self.transport: asyncio.Transport | None = None
        self._chunks: deque[bytes] = deque()
        self._buffered = 0
        self._eof = False
        self._paused = False
        self._readable: asyncio.Future[None] | None = None
        self._writable: asyncio.Future[None] | None = None

    # -- asyncio.Protocol (called by the event loop) ----------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        """Keep the transport."""
        # uvloop's transports implement asyncio.Transport without subclassing it
        self.transport = cast(asyncio.Transport, transport)

    def data_received(self, data: bytes) -> None:
        """Queue what arrived; pause reading when too much waits."""
        self._chunks.append(data)
        self._buffered += len(data)
        if self._buffered > _BUFFER_LIMIT and not self._paused and self.transport is not None:
            self._paused = True
            self.transport.pause_reading()
        self._wake_reader()

    def eof_received(self) -> bool:
        """The app closed its side: reads end; close ours too."""
        self._eof = True
        self._wake_reader()
        return False

    def connection_lost(self, exc: Exception | None) -> None:
        """The socket is gone: wake every waiter."""
        self._eof = True
        self._wake_reader()
        if self._writable is not None and not self._writable.done():
            self._writable.set_result(None)

    def pause_writing(self) -> None:
        """The socket's write buffer is full: :meth:`send` waits."""
        if self._writable is None or self._writable.done():
            self._writable = asyncio.get_running_loop().create_future()

    def resume_writing(self) -> None:
        """The write buffer drained."""
        if self._writable is not None and not self._writable.done():
            self._writable.set_result(None)

    def _wake_reader(self) -> None:
        if self._readable is not None and not self._readable.done():
            self._readable.set_result(None)

    # -- used by the forwarder ---------------------------------------------------------------

    def alive(self) -> bool:
        """Whether the app has neither closed the socket nor sent anything unasked."""
        transport = self.transport
        return not (self._eof or self._chunks or transport is None or transport.is_closing())

    def abort(self) -> None:
        """Drop the socket at once (the exchange on it can't be finished)."""
        if self.transport is not None:
            self.transport.abort()

    async def send(self, event: h11.Event, seconds: float) -> None:
        """Write one event; wait (up to ``seconds``) until the socket takes it."""
        data = self.h11.send(event)
        if not data:
            return
        if self.transport is None or self.transport.is_closing():
            raise ConnectionResetError("the connection to the app is closed")
        self.transport.write(data)
        if self._writable is not None and not self._writable.done():
            async with asyncio.timeout(seconds):
                await self._writable
            if self.transport.is_closing():
                raise ConnectionResetError("the connection to the app is closed")

    async def read(self) -> bytes:
        """The next bytes from the app; ``b""`` once it closed the connection."""
        while not self._chunks:
            if self._eof:
                return b""
            self._readable = asyncio.get_running_loop().create_future()
            await self._readable
        data = self._chunks.popleft()
        self._buffered -= len(data)
        if self._paused and self._buffered <= _BUFFER_LIMIT // 2 and self.transport is not None:
            self._paused = False
            self.transport.resume_reading()
        return data

    async def next_event(self) -> h11.Event | type[h11.PAUSED]:
        """The next event from the app, reading from the socket as needed."""
        while True:
            event = self.h11.next_event()
            if event is not h11.NEED_DATA:
                return event  # type: ignore[return-value]  # the sentinels are classes
            self.h11.receive_data(await self.read())


class Response:
    """The app's response: status and headers at once, the body as the caller reads it.

    Use it as an async context manager (or call :meth:`aclose`): on exit the connection
    returns to the pool if the body was read to its end, else it is closed.
    """

    def __init__(
        self, forwarder: Forwarder, key: Upstream, connection: _Connection, head: h11.Response
    ) -> None:
        self._forwarder = forwarder
        self._key = key
        self._connection: _Connection | None = connection
        self.status = head.status_code
        """The status code."""
        self.headers: list[tuple[bytes, bytes]] = head.headers.raw_items()
        """The headers as sent (names in the app's case)."""
        self.reason = bytes(head.reason)

    async def stream(self, before_wait: Callable[[], object] | None = None) -> AsyncIterator[bytes]:
        """The body's chunks as they arrive (none for ``HEAD``, 204 and 304).

        ``before_wait`` is called once, the first time the app's socket must be read again
        after a chunk was yielded (a body that arrived whole never calls it): the moment a
        caller may want to watch for its own client going away. Raises
        :class:`UpstreamClosed` if the app closes the connection before the body's end.
        """
        connection = self._connection
        if connection is None:
            return
        state = connection.h11
        yielded = False
        try:
            while True:
                event = state.next_event()
                if event is h11.NEED_DATA:
                    if yielded and before_wait is not None:
                        before_wait()
                        before_wait = None
                    state.receive_data(await connection.read())
                elif isinstance(event, h11.Data):
                    yielded = True
                    yield bytes(event.data)
                elif isinstance(event, h11.EndOfMessage):
                    self._close(reuse=True)
                    return
                else:  # ConnectionClosed or PAUSED: nothing more comes on this connection
                    raise UpstreamClosed(f"the app ended its response with {event!r}")
        except (h11.RemoteProtocolError, OSError) as exc:
            self._close(reuse=False)
            if isinstance(exc, UpstreamError):
                raise
            raise UpstreamClosed(f"the app broke off its response: {exc}") from exc
        except BaseException:
            self._close(reuse=False)
            raise

    def _close(self, *, reuse: bool) -> None:
        connection, self._connection = self._connection, None
        if connection is not None:
            self._forwarder._release(self._key, connection, reuse=reuse)

    async def aclose(self) -> None:
        """Give the connection back: to the pool after a body read to its end, else closed."""
        self._close(reuse=False)

    def abort(self) -> None:
        """Close the connection now, from any task: a :meth:`stream` waiting on the app
        ends with :class:`UpstreamClosed` (used when the caller's own client has gone)."""
        if self._connection is not None:
            self._connection.abort()

    async def __aenter__(self) -> Response:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self._close(reuse=False)


class Forwarder:
    """Sends requests to apps over pooled HTTP/1.1 connections (see the module docstring).

    One per server, made on first use and closed at exit (:meth:`aclose`). ``connect_timeout``
    bounds opening a connection; ``response_timeout`` bounds each wait for the app to take
    request bytes and the wait for its response's status line and headers (not the body: a
    stream of events may pause as long as it likes).
    """

    def __init__(
        self,
        *,
        connect_timeout: float = 10.0,
        response_timeout: float = 300.0,
        max_idle: int = 64,
        idle_seconds: float = 4.0,
    ) -> None:
        self.connect_timeout = connect_timeout
        self.response_timeout = response_timeout
        self.max_idle = max_idle
        self.idle_seconds = idle_seconds
        self._idle: dict[Upstream, deque[_Connection]] = {}
        self.active = 0
        """Connections lent out to requests right now."""
        self.opened = 0
        """Connections opened so far (a count for tests and metrics)."""

    def idle(self, upstream: Upstream) -> int:
        """How many idle connections to ``upstream`` wait in the pool."""
        return len(self._idle.get(upstream, ()))

    async def request(
        self,
        upstream: Upstream,
        method: bytes,
        target: bytes,
        headers: Iterable[tuple[bytes, bytes]],
        body: AsyncIterator[bytes] | None = None,
    ) -> Response:
        """Send one request and return the response once its headers arrived.

        ``headers`` are sent as given (with a ``Host`` for ``upstream`` if there is none);
        a ``body`` is sent with its ``Content-Length`` if ``headers`` has one, else chunked.
        Informational (1xx) responses are skipped. Raises :class:`InvalidRequest` for a
        request that can't be written, :class:`UpstreamUnreachable`,
        :class:`UpstreamTimeout` or :class:`UpstreamClosed` when no response begins.
        """
        sent = list(headers)
        names = {name for name, _ in sent}
        if b"host" not in names:
            sent.append((b"host", upstream.authority.encode("latin-1")))
        if body is not None and b"content-length" not in names:
            sent.append((b"transfer-encoding", b"chunked"))
        try:
            head = h11.Request(method=method, target=target, headers=sent)
        except h11.LocalProtocolError as exc:
            raise InvalidRequest(str(exc)) from exc
        retry = body is None and method in _IDEMPOTENT
        while True:
            connection, reused = await self._acquire(upstream)
            try:
                response = await self._exchange(connection, head, body)
            except UpstreamClosed:
                self._release(upstream, connection, reuse=False)
                if reused and retry:
                    retry = False
                    continue
                raise
            except BaseException:
                self._release(upstream, connection, reuse=False)
                raise
            return Response(self, upstream, connection, response)

    async def _exchange(
        self, connection: _Connection, head: h11.Request, body: AsyncIterator[bytes] | None
    ) -> h11.Response:
        timeout = self.response_timeout
        try:
            try:
                await connection.send(head, timeout)
                if body is not None:
                    async for chunk in body:
                        await connection.send(h11.Data(data=chunk), timeout)
                await connection.send(h11.EndOfMessage(), timeout)
            except TimeoutError:
                raise
            except OSError:
                # The app closed its side while the request was going out: it may have
                # answered first (a 413 for a body it will not read); read what it sent.
                pass
            async with asyncio.timeout(timeout):
                while True:
                    event = await connection.next_event()
                    if isinstance(event, h11.Response):
                        return event
                    if not isinstance(event, h11.InformationalResponse):
                        raise UpstreamClosed(f"the app closed the connection ({event!r})")
        except UpstreamError:
            raise
        except TimeoutError as exc:
            raise UpstreamTimeout(f"the app did not answer within {timeout:g} s") from exc
        except (h11.ProtocolError, OSError) as exc:
            raise UpstreamClosed(f"the app broke off the exchange: {exc}") from exc

    async def _acquire(self, upstream: Upstream) -> tuple[_Connection, bool]:
        idle = self._idle.get(upstream)
        if idle:
            expired = time.monotonic() - self.idle_seconds
            while idle:
                connection = idle.pop()
                if connection.idle_since > expired and connection.alive():
                    self.active += 1
                    return connection, True
                connection.abort()
                if connection.idle_since <= expired:
                    # everything under it waited longer still
                    while idle:
                        idle.popleft().abort()
        connection = await self._connect(upstream)
        self.active += 1
        self.opened += 1
        return connection, False

    async def _connect(self, upstream: Upstream) -> _Connection:
        loop = asyncio.get_running_loop()
        try:
            async with asyncio.timeout(self.connect_timeout):
                if upstream.path is not None:
                    _, connection = await loop.create_unix_connection(_Connection, upstream.path)
                else:
                    _, connection = await loop.create_connection(
                        _Connection, upstream.host, upstream.port
                    )
        except TimeoutError as exc:
            raise UpstreamTimeout(
                f"no connection within {self.connect_timeout:g} s: {exc}"
            ) from exc
        except OSError as exc:
            raise UpstreamUnreachable(f"{type(exc).__name__}: {exc.strerror or exc}") from exc
        return connection

    def _release(self, upstream: Upstream, connection: _Connection, *, reuse: bool) -> None:
        self.active -= 1
        state = connection.h11
        # Bytes the app sent past the end of its response (a body on HEAD, 204 or 304, a short
        # Content-Length, a second response) sit in h11's buffer: the connection would answer
        # the next request, maybe another viewer's, with them.
        finished = state.our_state is h11.DONE and state.their_state is h11.DONE
        if reuse and finished and not state.trailing_data[0]:
            with contextlib.suppress(h11.LocalProtocolError):
                state.start_next_cycle()
                idle = self._idle.setdefault(upstream, deque())
                if len(idle) < self.max_idle and connection.alive():
                    connection.idle_since = time.monotonic()
                    idle.append(connection)
                    return
        connection.abort()

    async def aclose(self) -> None:
        """Close every idle connection (called at server exit; lent ones close on return)."""
        idle, self._idle = self._idle, {}
        for connections in idle.values():
            for connection in connections:
                connection.abort()
