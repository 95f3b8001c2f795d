"""Jupyter events: ``POST /api/events`` validates, ``/api/events/subscribe`` delivers."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import anyio
import httpx
import pytest
import websockets
from fastapi import FastAPI

from junction.events import EVENTS
from junction.plugins.lab.events import CONTENTS_SCHEMA, MemoryEventBus
from junction.plugins.lab.service import InvalidEvent, UnknownEventSchema
from junction.testing import TEST_TOKEN, serve_in_thread

AUTH = {"Authorization": f"token {TEST_TOKEN}"}
CONTENTS_ID = CONTENTS_SCHEMA["$id"]
CLIENT_ID = "https://example.org/junction/lab-test/v1"
CLIENT_SCHEMA = {**CONTENTS_SCHEMA, "$id": CLIENT_ID}
"""A schema clients may post events of (the server's own are refused)."""


@pytest.fixture
def server(root_dir: Path, tmp_path: Path) -> Iterator[tuple[str, FastAPI]]:
    """A real server (WebSockets need one): ``host:port/`` and the app."""
    with serve_in_thread(
        enable=["frontend", "lab"],
        root_dir=root_dir,
        plugin_settings={"lab": {"data_dir": str(tmp_path / "lab-data")}},
    ) as (url, app):
        app.state.services.get(EVENTS).register(CLIENT_SCHEMA, from_clients=True)
        yield url.removeprefix("http://"), app


async def _post(address: str, event: dict[str, Any]) -> httpx.Response:
    async with httpx.AsyncClient(headers=AUTH) as client:
        return await client.post(f"http://{address}api/events", json=event)


def _data(event: dict[str, Any]) -> dict[str, Any]:
    """The event without the envelope every event carries (who acted, when)."""
    assert isinstance(event.pop("timestamp"), str)
    event.pop("username")
    return event


def _subscribe(address: str, **kwargs: Any) -> Any:
    return websockets.connect(f"ws://{address}api/events/subscribe", **kwargs)


@pytest.mark.anyio
async def test_posted_event_reaches_every_subscriber(server: tuple[str, FastAPI]) -> None:
    address, _ = server
    event = {"schema_id": CLIENT_ID, "version": "1", "data": {"action": "save", "path": "a"}}
    expected = {"schema_id": CLIENT_ID, "action": "save", "path": "a"}
    async with (
        _subscribe(address, additional_headers=AUTH) as first,
        _subscribe(address, additional_headers=AUTH) as second,
    ):
        response = await _post(address, event)
        assert response.status_code == 204
        with anyio.fail_after(5):
            assert _data(json.loads(await first.recv())) == expected
            assert _data(json.loads(await second.recv())) == expected


@pytest.mark.anyio
@pytest.mark.parametrize(
    ("event", "fragment"),
    [
        ({"schema_id": "https://nowhere/x/v1", "version": "1", "data": {}}, "no event schema"),
        ({"schema_id": CLIENT_ID, "version": "2", "data": {"action": "get", "path": ""}}, "2"),
        ({"schema_id": CLIENT_ID, "version": 1, "data": {"action": "fly", "path": ""}}, "fly"),
        ({"schema_id": CLIENT_ID, "version": 1, "data": {"action": "get"}}, "path"),
        ({"schema_id": CLIENT_ID, "data": {}}, "version"),
    ],
)
async def test_bad_events_are_refused(
    server: tuple[str, FastAPI], event: dict[str, Any], fragment: str
) -> None:
    response = await _post(server[0], event)
    assert response.status_code == 400
    assert fragment in response.json()["message"]


@pytest.mark.anyio
async def test_subscription_needs_a_login(server: tuple[str, FastAPI]) -> None:
    with pytest.raises(websockets.InvalidStatus) as denied:
        async with _subscribe(server[0]):
            pass
    assert denied.value.response.status_code == 403


@pytest.mark.anyio
async def test_subscribers_are_closed_when_the_server_stops(root_dir: Path, tmp_path: Path) -> None:
    with serve_in_thread(
        enable=["frontend", "lab"],
        root_dir=root_dir,
        plugin_settings={"lab": {"data_dir": str(tmp_path / "lab-data")}},
    ) as (url, _):
        address = url.removeprefix("http://")
        socket = await _subscribe(address, additional_headers=AUTH)
        stopping = time.monotonic()
    # An open subscription must not hold the shutdown up (uvicorn would wait 10 s for it).
    assert time.monotonic() - stopping < 5
    with anyio.fail_after(5):
        await socket.wait_closed()
    assert socket.close_code in (1001, 1012)


@pytest.mark.anyio
async def test_plugins_register_schemas_and_emit_from_code() -> None:
    bus = MemoryEventBus()
    schema_id = "https://example.org/junction/test/v1"
    schema: dict[str, Any] = {
        "$id": schema_id,
        "version": "1",
        "type": "object",
        "properties": {"n": {"type": "integer"}},
        "required": ["n"],
    }
    bus.register(schema)
    async with bus.subscribe() as stream:
        bus.emit(schema_id, {"n": 1})
        bus.emit(schema_id, {"n": 2, "schema_id": "spoofed"})
        assert _data(await stream.receive()) == {"schema_id": schema_id, "n": 1}
        assert (await stream.receive())["schema_id"] == schema_id
    with pytest.raises(InvalidEvent):
        bus.emit(schema_id, {"n": "one"})
    with pytest.raises(UnknownEventSchema):
        bus.emit(schema_id, {"n": 1}, version="2")
    with pytest.raises(ValueError, match="version"):
        bus.register({"$id": "https://example.org/no-version"})
    with pytest.raises(ValueError, match="invalid event schema"):
        bus.register({"$id": "https://example.org/bad", "version": 1, "type": "nonsense"})


@pytest.mark.anyio
async def test_a_slow_subscriber_loses_events_without_blocking_the_emitter() -> None:
    bus = MemoryEventBus(queue_size=1)
    data = {"action": "get", "path": "x"}
    async with bus.subscribe() as slow, bus.subscribe() as fast:
        with anyio.fail_after(1):
            bus.emit(CONTENTS_ID, data)
            assert _data(await fast.receive()) == {"schema_id": CONTENTS_ID, **data}
            bus.emit(CONTENTS_ID, {**data, "path": "y"})  # slow's queue is full: dropped
            assert (await fast.receive())["path"] == "y"
        assert (await slow.receive())["path"] == "x"
        with pytest.raises(anyio.WouldBlock):
            slow.receive_nowait()
