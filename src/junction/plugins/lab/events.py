"""``MemoryEventBus``: Jupyter events validated against registered schemas, fanned out in memory.

Each subscriber (one per ``/api/events/subscribe`` socket) has a bounded queue; an event
that does not fit is dropped for that subscriber only, so a stalled browser tab never slows
the plugin emitting. The wire form of an event is ``{"schema_id": ..., <data fields>}``.

Two schemas of the Jupyter server event protocol are registered from the start, so plugins
can emit them without registering: contents actions and kernel actions.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Mapping
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from typing import Any

import anyio
from anyio.streams.memory import MemoryObjectReceiveStream, MemoryObjectSendStream
from jsonschema import Draft7Validator
from jsonschema.exceptions import SchemaError

from junction.plugins.lab.service import Event, InvalidEvent, UnknownEventSchema

__all__ = ["CONTENTS_SCHEMA", "KERNEL_ACTIONS_SCHEMA", "MemoryEventBus"]

log = logging.getLogger("junction.lab")

CONTENTS_SCHEMA: dict[str, Any] = {
    "$id": "https://events.jupyter.org/jupyter_server/contents_service/v1",
    "version": "1",
    "title": "Contents actions",
    "description": "A file or directory was read, created, saved, renamed, copied or deleted.",
    "type": "object",
    "required": ["action", "path"],
    "properties": {
        "action": {"enum": ["get", "create", "save", "upload", "rename", "copy", "delete"]},
        "path": {"type": "string", "description": "API path acted on (the target)."},
        "source_path": {"type": "string", "description": "Source of a rename or copy."},
    },
}

KERNEL_ACTIONS_SCHEMA: dict[str, Any] = {
    "$id": "https://events.jupyter.org/jupyter_server/kernel_actions/v1",
    "version": "1",
    "title": "Kernel actions",
    "description": "A kernel was started, interrupted, restarted or shut down.",
    "type": "object",
    "required": ["action", "msg"],
    "properties": {
        "action": {"enum": ["start", "interrupt", "shutdown", "restart"]},
        "kernel_id": {"type": "string"},
        "kernel_name": {"type": "string"},
        "status": {"enum": ["error", "success"]},
        "status_code": {"type": "number"},
        "msg": {"type": "string"},
    },
}


class MemoryEventBus:
    """The event bus of one server process (see the module docstring)."""

    def __init__(self, *, queue_size: int = 256) -> None:
        self.queue_size = queue_size
        self._schemas: dict[str, tuple[str, Draft7Validator]] = {}
        self._subscribers: set[MemoryObjectSendStream[Event]] = set()
        for schema in (CONTENTS_SCHEMA, KERNEL_ACTIONS_SCHEMA):
            self.register(schema)

    def register(self, schema: Mapping[str, Any]) -> None:
        """Accept events for ``schema``; raises ``ValueError`` if it lacks ``$id``/``version``
        or is not a valid JSON schema. Registering the same id again replaces it.
        """
        schema_id, version = schema.get("$id"), schema.get("version")
        if not isinstance(schema_id, str) or version is None:
            raise ValueError("an event schema needs '$id' and 'version'")
        try:
            Draft7Validator.check_schema(dict(schema))
        except SchemaError as exc:
            raise ValueError(f"invalid event schema {schema_id}: {exc.message}") from None
        self._schemas[schema_id] = (str(version), Draft7Validator(dict(schema)))

    def emit(self, schema_id: str, data: Mapping[str, Any], *, version: str | None = None) -> None:
        """Validate and deliver; raises :class:`UnknownEventSchema`, :class:`InvalidEvent`."""
        registered = self._schemas.get(schema_id)
        if registered is None:
            raise UnknownEventSchema(f"no event schema is registered as {schema_id!r}")
        known_version, validator = registered
        if version is not None and str(version) != known_version:
            raise UnknownEventSchema(
                f"event schema {schema_id!r} is registered at version {known_version}, "
                f"not {version}"
            )
        errors = sorted(validator.iter_errors(dict(data)), key=lambda e: list(e.path))
        if errors:
            where = "/".join(str(p) for p in errors[0].absolute_path) or "(top level)"
            raise InvalidEvent(f"event data fails {schema_id} at {where}: {errors[0].message}")
        event: Event = {"schema_id": schema_id, **data}
        event["schema_id"] = schema_id  # the data cannot pretend to be another event
        for subscriber in list(self._subscribers):
            try:
                subscriber.send_nowait(event)
            except anyio.WouldBlock:
                log.warning("an event subscriber is not keeping up; dropped a %s event", schema_id)
            except (anyio.BrokenResourceError, anyio.ClosedResourceError):
                self._subscribers.discard(subscriber)

    def subscribe(self) -> AbstractAsyncContextManager[MemoryObjectReceiveStream[Event]]:
        """Receive every event emitted while the context is open."""
        return self._subscription()

    @asynccontextmanager
    async def _subscription(self) -> AsyncIterator[MemoryObjectReceiveStream[Event]]:
        send, receive = anyio.create_memory_object_stream[Event](self.queue_size)
        self._subscribers.add(send)
        try:
            yield receive
        finally:
            self._subscribers.discard(send)
            send.close()
            receive.close()

    def close(self) -> None:
        """End every subscription (their streams finish); called when the server stops."""
        for subscriber in list(self._subscribers):
            subscriber.close()
        self._subscribers.clear()
