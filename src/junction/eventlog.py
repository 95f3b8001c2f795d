"""Where events go besides subscribers: a JSON-lines file, and the server's log.

:class:`JsonLinesSink` (setting ``event_log_path``) appends one line per event in the
jupyter_events record format, so tools that read jupyter_server's event logs read ours::

    {"__timestamp__": "...Z", "__schema__": <$id>, "__schema_version__": "1",
     "__metadata_version__": 1, <data fields>, "username": ..., "timestamp": ...}

The emitter only puts the event in a bounded queue; a task writes queued events in batches
from a worker thread, so a slow disk never stalls the event loop (when the queue is full,
events are dropped and counted). The file is created 0600 (events name users and paths) and
rotated like ``logging.handlers.RotatingFileHandler``: past ``event_log_max_bytes`` it
becomes ``<path>.1``, older files shift up to ``<path>.<event_log_backups>``, the oldest
goes.

With ``log_events``, every event is also a log line of the logger ``junction.events`` (the
whole event under ``event`` in the JSON log format).
"""

from __future__ import annotations

import logging
import os
from collections.abc import AsyncIterator, Callable
from contextlib import AsyncExitStack, asynccontextmanager
from pathlib import Path
from typing import IO

import anyio
import orjson

from junction.events import Event, MemoryEventBus
from junction.settings import ServerSettings

__all__ = ["JsonLinesSink", "log_event", "running_sinks"]

log = logging.getLogger("junction.events")

_BATCH = 512


class JsonLinesSink:
    """Appends events to a JSON-lines file from a worker thread (see the module docstring).

    Use it as a bus listener while :meth:`run` runs in a task; :meth:`close` ends the run
    once everything queued is written.
    """

    def __init__(
        self,
        path: Path,
        *,
        max_bytes: int,
        backups: int,
        version_of: Callable[[str], str] = lambda schema_id: "1",
        queue_size: int = 10_000,
    ) -> None:
        self.path = path
        self.version_of = version_of
        self.max_bytes = max_bytes
        self.backups = backups
        self.dropped = 0
        self._send, self._receive = anyio.create_memory_object_stream[Event](queue_size)
        self._file: IO[bytes] | None = None

    def __call__(self, event: Event) -> None:
        """Queue ``event`` for writing; never blocks (a full queue drops it)."""
        try:
            self._send.send_nowait(event)
        except anyio.WouldBlock:
            self.dropped += 1
            if self.dropped == 1 or self.dropped % 1000 == 0:
                log.warning(
                    "the event log %s is behind; %d events dropped", self.path, self.dropped
                )
        except anyio.ClosedResourceError:
            pass

    async def run(self) -> None:
        """Write queued events until :meth:`close`, in batches, off the event loop."""
        try:
            async for first in self._receive:
                batch = [first]
                while len(batch) < _BATCH:
                    try:
                        batch.append(self._receive.receive_nowait())
                    except (anyio.WouldBlock, anyio.EndOfStream):
                        break
                try:
                    await anyio.to_thread.run_sync(self._write, batch)
                except OSError as exc:
                    log.error("cannot write the event log %s: %s", self.path, exc)
        finally:
            self._receive.close()
            self._send.close()
            with anyio.CancelScope(shield=True):
                await anyio.to_thread.run_sync(self._close_file)

    def close(self) -> None:
        """Accept no more events; :meth:`run` returns once the queue is written."""
        self._send.close()

    def _write(self, batch: list[Event]) -> None:
        handle = self._open()
        size = handle.tell()
        chunk: list[bytes] = []
        for event in batch:
            line = self._record(event)
            if size > 0 and size + len(line) > self.max_bytes:  # rotate before this line
                handle.write(b"".join(chunk))
                chunk.clear()
                self._rotate()
                handle = self._open()
                size = 0
            chunk.append(line)
            size += len(line)
        handle.write(b"".join(chunk))
        handle.flush()

    def _record(self, event: Event) -> bytes:
        record = {
            "__timestamp__": event["timestamp"],
            "__schema__": event["schema_id"],
            "__schema_version__": self.version_of(event["schema_id"]),
            "__metadata_version__": 1,
        }
        record.update((k, v) for k, v in event.items() if k != "schema_id")
        return orjson.dumps(record, default=str) + b"\n"

    def _open(self) -> IO[bytes]:
        if self._file is None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
            self._file = os.fdopen(fd, "ab")
        return self._file

    def _rotate(self) -> None:
        self._close_file()
        if self.backups <= 0:
            self.path.unlink(missing_ok=True)
            return
        for index in range(self.backups - 1, 0, -1):
            older = self.path.with_name(f"{self.path.name}.{index}")
            if older.exists():
                older.replace(self.path.with_name(f"{self.path.name}.{index + 1}"))
        self.path.replace(self.path.with_name(f"{self.path.name}.1"))

    def _close_file(self) -> None:
        if self._file is not None:
            self._file.close()
            self._file = None


def log_event(event: Event) -> None:
    """Write ``event`` to the log (logger ``junction.events``, level info)."""
    what = event["schema_id"].rstrip("/").rsplit("/", 2)[-2]
    action, username = event.get("action", ""), event["username"]
    log.info("event %s %s by %s", what, action, username, extra={"event": event})


@asynccontextmanager
async def running_sinks(bus: MemoryEventBus, settings: ServerSettings) -> AsyncIterator[None]:
    """Attach the sinks ``settings`` ask for while the server runs; at exit (after every
    plugin stopped) end the subscriptions and write what is still queued."""
    async with AsyncExitStack() as stack:
        removers: list[Callable[[], None]] = []
        if settings.log_events:
            removers.append(bus.add_listener(log_event))
        tg = await stack.enter_async_context(anyio.create_task_group())
        sink = None
        if settings.event_log_path is not None:
            sink = JsonLinesSink(
                settings.event_log_path.expanduser(),
                max_bytes=settings.event_log_max_bytes,
                backups=settings.event_log_backups,
                version_of=bus.version_of,
            )
            removers.append(bus.add_listener(sink))
            tg.start_soon(sink.run)
        try:
            yield
        finally:
            bus.close()
            for remove in removers:
                remove()
            if sink is not None:
                sink.close()
