"""Server events: the :data:`EVENTS` service, which every plugin may emit through.

An event says what happened on the server (a file saved, a kernel started, a login): data
validated against a registered JSON schema (Jupyter events: ``$id`` and ``version``), then
delivered to every subscriber (``/api/events/subscribe`` sockets) and listener (the JSON-lines
file and the log, see :mod:`junction.eventlog`). The core makes one :class:`MemoryEventBus` per
app with the server's own schemas (:mod:`junction.eventschemas`) and provides it as
:data:`EVENTS`; plugins declare it in ``optional`` and emit from their services, routes emit
with :func:`emit_event`.

What subscribers receive::

    {"schema_id": <$id>, <data fields>, "username": <who acted, or null>,
     "timestamp": "2026-12-06T12:00:00.000000Z"}

Emitting never waits and never fails the action it reports: each subscriber has a bounded
queue, and one that does not keep up loses events for itself alone.

Errors, mapped to HTTP by the core::

    UnknownEventSchema (BadRequest)     400  no schema registered under that id and version
    InvalidEvent (BadRequest)           400  event data failing its schema
    ServerEvent (Forbidden)             403  a client posting an event only the server emits
    TooManyEvents                       429  a client posting events faster than allowed

Clients may post events (``POST /api/events``) only of schemas registered with
``from_clients=True``: the server's own (logins, contents, kernels...) and every other schema
a plugin registers are the server's word alone, so nobody can forge an audit record.
"""

from __future__ import annotations

import logging
import time
from collections.abc import AsyncIterator, Callable, Mapping
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from typing import Any, Protocol

import anyio
import fastjsonschema
from anyio.streams.memory import MemoryObjectReceiveStream, MemoryObjectSendStream
from starlette.requests import HTTPConnection

from junction.auth.middleware import REQUEST_USER
from junction.errors import BadRequest, Forbidden, HTTPError
from junction.eventschemas import SCHEMAS
from junction.plugin import ServiceKey

__all__ = [
    "EVENTS",
    "Event",
    "EventBus",
    "EventFilter",
    "EventListener",
    "InvalidEvent",
    "MemoryEventBus",
    "ServerEvent",
    "TooManyEvents",
    "UnknownEventSchema",
    "emit_event",
]

log = logging.getLogger("junction.events")

Event = dict[str, Any]
"""An event as subscribers receive it: ``{"schema_id": ..., <data>, "username", "timestamp"}``.

Shared between subscribers and listeners: never modify one."""

EventFilter = Callable[[Event], bool]
"""Decides whether one subscriber receives an event; called on the emitter's stack."""

EventListener = Callable[[Event], None]
"""Called with every event on the emitter's stack; must not block (hand work to a task)."""


class UnknownEventSchema(BadRequest):
    """No event schema is registered with that id, or not at that version."""


class InvalidEvent(BadRequest):
    """Event data that fails its schema."""


class ServerEvent(Forbidden):
    """A client posted an event of a schema only the server emits."""

    def __init__(self, schema_id: str) -> None:
        super().__init__(
            f"events of {schema_id!r} are emitted by the server only", reason="ServerEvent"
        )


class TooManyEvents(HTTPError):
    """A client posts events faster than the server accepts them."""

    status_code = 429
    default_reason = "Too Many Requests"


class EventBus(Protocol):
    """Structured events (Jupyter events): validated against a registered schema, then
    delivered to every subscriber and listener. Provided by the core as :data:`EVENTS`.
    """

    def register(self, schema: Mapping[str, Any], *, from_clients: bool = False) -> None:
        """Accept events for a JSON schema with ``$id`` and ``version`` keys.

        Called by plugins in their lifespan for events of their own. The schema must allow
        the ``username`` and ``timestamp`` fields every event carries. Clients may post
        events of it only with ``from_clients``. Raises ``ValueError`` for a malformed
        schema.
        """
        ...

    def from_clients(self, schema_id: str) -> bool:
        """Whether clients may post events of ``schema_id`` (True for an unknown id, which
        :meth:`emit` refuses anyway)."""
        ...

    def emit(
        self,
        schema_id: str,
        data: Mapping[str, Any],
        *,
        version: str | None = None,
        username: str | None = None,
    ) -> None:
        """Validate ``data`` and deliver it; never blocks.

        ``username`` says who acted; when None, the user of the request being served (if
        any). A subscriber too slow to keep up loses events rather than slowing the emitter.
        Raises :class:`UnknownEventSchema` and :class:`InvalidEvent`.
        """
        ...

    def subscribe(
        self, accept: EventFilter | None = None
    ) -> AbstractAsyncContextManager[MemoryObjectReceiveStream[Event]]:
        """A stream of the events emitted while the context is open (those ``accept``
        approves); it ends when the server stops."""
        ...

    def add_listener(self, listener: EventListener) -> Callable[[], None]:
        """Call ``listener`` with every event from now on; returns a function removing it."""
        ...


EVENTS: ServiceKey[EventBus] = ServiceKey("events")
"""The server's event bus (provided by the core; declare it in ``optional``)."""


class _Schema:
    """A registered schema: its version, and a validator compiled at its first event."""

    __slots__ = ("schema", "validate", "version")

    def __init__(self, schema: Mapping[str, Any]) -> None:
        self.schema = dict(schema)
        self.version = str(schema["version"])
        self.validate: Callable[[Any], Any] | None = None

    def check(self, schema_id: str, event: Event) -> None:
        """Raise :class:`InvalidEvent` naming the first problem of ``event``, if any.

        Validation code generated by fastjsonschema takes a few microseconds, where
        ``jsonschema`` takes tens; ``jsonschema`` words the message when an event fails.
        """
        if self.validate is None:
            try:
                self.validate = fastjsonschema.compile(self.schema)
            except Exception:  # a schema only the reference library handles: use it alone
                self.validate = _reference_validator(self.schema)
        try:
            self.validate(event)
        except fastjsonschema.JsonSchemaException:
            # jsonschema (with referencing, rpds, attrs...: several MB) is imported only
            # when an event fails, or a plugin registers a schema of its own.
            from jsonschema import Draft7Validator

            errors = sorted(
                Draft7Validator(self.schema).iter_errors(event), key=lambda e: list(e.path)
            )
            if not errors:  # pragma: no cover - the libraries disagree: trust the reference
                return
            where = "/".join(str(p) for p in errors[0].absolute_path) or "(top level)"
            raise InvalidEvent(
                f"event data fails {schema_id} at {where}: {errors[0].message}"
            ) from None


def _reference_validator(schema: Mapping[str, Any]) -> Callable[[Any], None]:
    """jsonschema's Draft 7 check of ``schema``, failing as fastjsonschema's code does."""
    from jsonschema import Draft7Validator  # see _Schema.check

    validator = Draft7Validator(schema)

    def validate(event: Any) -> None:
        if not validator.is_valid(event):
            raise fastjsonschema.JsonSchemaException("event data fails its schema")

    return validate


class MemoryEventBus:
    """The event bus of one server process (see the module docstring)."""

    def __init__(self, *, queue_size: int = 256) -> None:
        self.queue_size = queue_size
        self.dropped = 0
        # The server's own schemas are known to be valid: checking them would cost every
        # app a few milliseconds (tests make hundreds).
        self._schemas: dict[str, _Schema] = {s["$id"]: _Schema(s) for s in SCHEMAS}
        self._from_clients: set[str] = set()
        self._subscribers: dict[MemoryObjectSendStream[Event], EventFilter | None] = {}
        self._listeners: list[EventListener] = []
        self._second = -1
        self._second_text = ""

    def _timestamp(self) -> str:
        """Now, as ``2026-12-06T12:00:00.000000Z``; formatting the seconds once per second
        makes it several times cheaper than ``strftime`` per event."""
        now = time.time()
        second = int(now)
        if second != self._second:
            self._second = second
            self._second_text = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(second))
        return f"{self._second_text}.{int((now - second) * 1_000_000):06d}Z"

    def register(self, schema: Mapping[str, Any], *, from_clients: bool = False) -> None:
        """See :meth:`EventBus.register`. Registering the same id again replaces it."""
        schema_id, version = schema.get("$id"), schema.get("version")
        if not isinstance(schema_id, str) or version is None:
            raise ValueError("an event schema needs '$id' and 'version'")
        from jsonschema import Draft7Validator  # see _Schema.check
        from jsonschema.exceptions import SchemaError

        try:
            Draft7Validator.check_schema(dict(schema))
        except SchemaError as exc:
            raise ValueError(f"invalid event schema {schema_id}: {exc.message}") from None
        self._schemas[schema_id] = _Schema(schema)
        if from_clients:
            self._from_clients.add(schema_id)
        else:
            self._from_clients.discard(schema_id)

    def from_clients(self, schema_id: str) -> bool:
        """See :meth:`EventBus.from_clients`."""
        return schema_id not in self._schemas or schema_id in self._from_clients

    def version_of(self, schema_id: str) -> str:
        """The registered version of a schema ("1" for one not registered)."""
        registered = self._schemas.get(schema_id)
        return registered.version if registered is not None else "1"

    def emit(
        self,
        schema_id: str,
        data: Mapping[str, Any],
        *,
        version: str | None = None,
        username: str | None = None,
    ) -> None:
        """See :meth:`EventBus.emit`."""
        registered = self._schemas.get(schema_id)
        if registered is None:
            raise UnknownEventSchema(f"no event schema is registered as {schema_id!r}")
        if version is not None and str(version) != registered.version:
            raise UnknownEventSchema(
                f"event schema {schema_id!r} is registered at version {registered.version}, "
                f"not {version}"
            )
        if username is None:
            user = REQUEST_USER.get()
            username = user.username if user is not None else None
        # The envelope comes last: data cannot pretend to be another event or another user.
        event: Event = {**data, "username": username, "timestamp": self._timestamp()}
        event.pop("schema_id", None)
        registered.check(schema_id, event)
        event = {"schema_id": schema_id, **event}
        for listener in self._listeners:
            try:
                listener(event)
            except Exception:
                log.exception("an event listener failed on a %s event", schema_id)
        for subscriber, accept in list(self._subscribers.items()):
            try:
                if accept is not None and not accept(event):
                    continue
                subscriber.send_nowait(event)
            except anyio.WouldBlock:
                self.dropped += 1
                log.warning("an event subscriber is not keeping up; dropped a %s event", schema_id)
            except (anyio.BrokenResourceError, anyio.ClosedResourceError):
                self._subscribers.pop(subscriber, None)

    def subscribe(
        self, accept: EventFilter | None = None
    ) -> AbstractAsyncContextManager[MemoryObjectReceiveStream[Event]]:
        """See :meth:`EventBus.subscribe`."""
        return self._subscription(accept)

    @asynccontextmanager
    async def _subscription(
        self, accept: EventFilter | None
    ) -> AsyncIterator[MemoryObjectReceiveStream[Event]]:
        send, receive = anyio.create_memory_object_stream[Event](self.queue_size)
        self._subscribers[send] = accept
        try:
            yield receive
        finally:
            self._subscribers.pop(send, None)
            send.close()
            receive.close()

    def add_listener(self, listener: EventListener) -> Callable[[], None]:
        """See :meth:`EventBus.add_listener`."""
        self._listeners.append(listener)

        def remove() -> None:
            if listener in self._listeners:
                self._listeners.remove(listener)

        return remove

    def close(self) -> None:
        """End every subscription (their streams finish); called when the server stops."""
        for subscriber in list(self._subscribers):
            subscriber.close()
        self._subscribers.clear()


def emit_event(
    conn: HTTPConnection, schema_id: str, data: Mapping[str, Any], *, username: str | None = None
) -> None:
    """Emit an event from a route, on behalf of the request's user unless ``username`` says
    otherwise. Never raises: an event that cannot be emitted is logged, and the action it
    reports stands.
    """
    try:
        bus: EventBus = conn.app.state.services.get(EVENTS)
        bus.emit(schema_id, data, username=username)
    except Exception:
        log.exception("could not emit a %s event", schema_id)
