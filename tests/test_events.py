"""The core event bus (``junction.events``), its sinks (``junction.eventlog``), and the events
plugins emit, in-process. Wire tests on uvicorn are in ``test_events_e2e.py``."""

from __future__ import annotations

import getpass
import json
import logging
import sys
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import anyio
import fastjsonschema
import pytest
from jsonschema import Draft7Validator

from junction.auth.identity import User
from junction.auth.middleware import REQUEST_USER
from junction.eventlog import JsonLinesSink
from junction.events import EVENTS, Event, InvalidEvent, MemoryEventBus, emit_event
from junction.eventschemas import APP_EVENTS, AUTH_EVENTS, CONTENTS_EVENTS, SCHEMAS
from junction.logs import JSONFormatter
from junction.plugins.lab.service import EVENTS as LAB_EVENTS
from junction.plugins.lab.service import EventBus as LabEventBus
from junction.services import ServiceRegistry
from junction.testing import app_client

pytestmark = pytest.mark.anyio

SAVE = {"action": "save", "path": "a.txt"}
VALIDATORS = {schema["$id"]: Draft7Validator(schema) for schema in SCHEMAS}


def _valid(event: Event) -> Event:
    VALIDATORS[event["schema_id"]].validate({k: v for k, v in event.items() if k != "schema_id"})
    return event


async def _events(stream: Any, schema_id: str, count: int) -> list[Event]:
    """The next ``count`` events of ``schema_id`` from a subscription (others skipped)."""
    found: list[Event] = []
    with anyio.fail_after(30):
        while len(found) < count:
            event = await stream.receive()
            if event["schema_id"] == schema_id:
                found.append(_valid(event))
    return found


def test_the_server_s_schemas_are_valid_and_allow_the_envelope() -> None:
    for schema in SCHEMAS:  # the bus trusts them without checking
        Draft7Validator.check_schema(schema)
        assert schema["additionalProperties"] is False  # no field beyond those listed
        assert {"username", "timestamp"} <= set(schema["properties"])


def test_the_server_s_events_take_no_extra_fields() -> None:
    bus = MemoryEventBus()
    with pytest.raises(InvalidEvent, match="forged"):
        bus.emit(CONTENTS_EVENTS, {**SAVE, "forged": True}, username="ana")
    with pytest.raises(InvalidEvent, match="forged"):
        bus.emit(AUTH_EVENTS, {"action": "login", "forged": True}, username="ana")


def test_the_lab_names_are_the_core_s() -> None:
    assert LAB_EVENTS is EVENTS
    assert LabEventBus.__module__ == "junction.events"


async def test_events_carry_who_acted_and_when() -> None:
    bus = MemoryEventBus()
    async with bus.subscribe() as stream:
        bus.emit(CONTENTS_EVENTS, SAVE)
        token = REQUEST_USER.set(User.named("ana"))
        try:
            bus.emit(CONTENTS_EVENTS, SAVE)
            bus.emit(CONTENTS_EVENTS, SAVE, username="bob")
        finally:
            REQUEST_USER.reset(token)
        bus.emit(CONTENTS_EVENTS, {**SAVE, "username": "mallory", "schema_id": "x"})
        events = [_valid(stream.receive_nowait()) for _ in range(4)]
    assert [e["username"] for e in events] == [None, "ana", "bob", None]
    assert all(e["schema_id"] == CONTENTS_EVENTS for e in events)
    assert events[0]["timestamp"].endswith("Z")
    assert events[0]["timestamp"] <= events[3]["timestamp"]


async def test_a_schema_fastjsonschema_cannot_compile_is_checked_by_jsonschema(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    def refuse(schema: Any) -> Any:
        raise fastjsonschema.JsonSchemaDefinitionException("cannot compile that")

    monkeypatch.setattr(fastjsonschema, "compile", refuse)
    bus = MemoryEventBus()
    schema_id = "https://example.org/odd/v1"
    bus.register(
        {
            "$id": schema_id,
            "version": "1",
            "type": "object",
            "properties": {"n": {"type": "integer"}},
        }
    )
    async with bus.subscribe() as stream:
        bus.emit(schema_id, {"n": 1})
        assert stream.receive_nowait()["n"] == 1
    with pytest.raises(InvalidEvent, match="'one' is not of type 'integer'"):
        bus.emit(schema_id, {"n": "one"})


async def test_a_filter_chooses_what_a_subscriber_receives() -> None:
    bus = MemoryEventBus()
    async with (
        bus.subscribe(lambda event: event["username"] == "ana") as ana,
        bus.subscribe() as everyone,
    ):
        bus.emit(CONTENTS_EVENTS, SAVE, username="bob")
        bus.emit(CONTENTS_EVENTS, SAVE, username="ana")
        assert ana.receive_nowait()["username"] == "ana"
        with pytest.raises(anyio.WouldBlock):
            ana.receive_nowait()
        assert [everyone.receive_nowait()["username"] for _ in range(2)] == ["bob", "ana"]


async def test_listeners_see_every_event_and_their_faults_stay_theirs(
    caplog: pytest.LogCaptureFixture,
) -> None:
    bus = MemoryEventBus()
    seen: list[Event] = []

    def broken(event: Event) -> None:
        raise RuntimeError("boom")

    remove_broken = bus.add_listener(broken)
    remove = bus.add_listener(seen.append)
    bus.emit(CONTENTS_EVENTS, SAVE)
    assert len(seen) == 1
    assert "an event listener failed" in caplog.text
    remove()
    remove_broken()
    remove()  # twice is harmless
    bus.emit(CONTENTS_EVENTS, SAVE)
    assert len(seen) == 1
    with pytest.raises(InvalidEvent, match="action"):
        bus.emit(APP_EVENTS, {"action": "launch", "app_id": "x"})


async def test_the_json_lines_sink_writes_jupyter_events_records_and_rotates(
    tmp_path: Path,
) -> None:
    path = tmp_path / "events" / "log.jsonl"
    bus = MemoryEventBus()
    sink = JsonLinesSink(path, max_bytes=1000, backups=2, version_of=bus.version_of)
    bus.add_listener(sink)
    async with anyio.create_task_group() as tg:
        tg.start_soon(sink.run)
        for index in range(40):
            bus.emit(CONTENTS_EVENTS, {"action": "save", "path": f"{index:02}.txt"})
            await anyio.sleep(0)  # let the writer take small batches, as a server would
        sink.close()
    sink("too late")  # type: ignore[arg-type]  # after close: ignored, never raised
    files = sorted(path.parent.iterdir())
    assert [f.name for f in files] == ["log.jsonl", "log.jsonl.1", "log.jsonl.2"]
    assert all(f.stat().st_size <= 1000 for f in files)
    assert all(f.stat().st_mode & 0o777 == 0o600 for f in files)
    last = [json.loads(line) for line in path.read_text().splitlines()]
    assert last[-1]["path"] == "39.txt"
    record = last[-1]
    assert record["__schema__"] == CONTENTS_EVENTS
    assert record["__schema_version__"] == "1"
    assert record["__metadata_version__"] == 1
    assert record["__timestamp__"] == record["timestamp"]
    assert "schema_id" not in record


async def test_a_full_sink_queue_drops_events_without_blocking(tmp_path: Path) -> None:
    sink = JsonLinesSink(tmp_path / "e.jsonl", max_bytes=10_000, backups=0, queue_size=1)
    sink({"schema_id": CONTENTS_EVENTS, "timestamp": "t"})
    sink({"schema_id": CONTENTS_EVENTS, "timestamp": "t"})
    assert sink.dropped == 1
    sink.close()
    await sink.run()
    assert len((tmp_path / "e.jsonl").read_text().splitlines()) == 1


async def test_without_backups_the_event_log_starts_over(tmp_path: Path) -> None:
    path = tmp_path / "e.jsonl"
    sink = JsonLinesSink(path, max_bytes=300, backups=0)
    for index in range(5):
        sink({"schema_id": CONTENTS_EVENTS, "timestamp": "t", "path": "x" * 100, "n": index})
    sink.close()
    await sink.run()
    assert [f.name for f in tmp_path.iterdir()] == ["e.jsonl"]
    assert [json.loads(line)["n"] for line in path.read_text().splitlines()] == [4]


async def test_an_unwritable_event_log_is_logged_and_the_server_goes_on(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    (tmp_path / "file").write_text("")
    sink = JsonLinesSink(tmp_path / "file" / "e.jsonl", max_bytes=1000, backups=1)
    sink({"schema_id": CONTENTS_EVENTS, "timestamp": "t"})
    sink.close()
    await sink.run()
    assert "cannot write the event log" in caplog.text


async def test_emit_event_never_fails_the_request(caplog: pytest.LogCaptureFixture) -> None:
    bus = MemoryEventBus()
    conn = SimpleNamespace(app=SimpleNamespace(state=SimpleNamespace(services=ServiceRegistry())))
    conn.app.state.services.provide(EVENTS, bus)
    async with bus.subscribe() as stream:
        emit_event(conn, CONTENTS_EVENTS, SAVE, username="ana")  # type: ignore[arg-type]
        assert stream.receive_nowait()["username"] == "ana"
        emit_event(conn, CONTENTS_EVENTS, {"action": "fly"})  # type: ignore[arg-type]
        with pytest.raises(anyio.WouldBlock):
            stream.receive_nowait()
    assert "could not emit" in caplog.text


async def test_the_server_logs_events_when_asked(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="junction.events")
    async with app_client(root_dir=tmp_path, enable=["contents"], log_events=True) as client:
        body = {"type": "file", "format": "text", "content": ""}
        saved = await client.put("/api/contents/a.txt", json=body)
        assert saved.status_code == 201
    records = [r for r in caplog.records if r.name == "junction.events"]
    assert [r.getMessage() for r in records] == ["event contents_service upload by " + _me()]
    line = json.loads(JSONFormatter().format(records[0]))
    assert line["event"]["path"] == "a.txt"


def _me() -> str:
    """The token holder's name: the account running the tests."""
    return getpass.getuser()


async def test_cors_lets_scripts_read_the_request_id(tmp_path: Path) -> None:
    async with app_client(allow_origin="https://app.example", expose_headers="X-Trace") as client:
        response = await client.get("/api/status", headers={"Origin": "https://app.example"})
    exposed = response.headers["access-control-expose-headers"].lower()
    assert "x-request-id" in exposed
    assert "x-trace" in exposed


async def test_apps_report_start_ready_failure_and_stop(tmp_path: Path) -> None:
    echo = str(Path(__file__).parent / "apps" / "echo_app.py")
    async with app_client(
        root_dir=tmp_path,
        enable=["apps"],
        database_url=f"sqlite+aiosqlite:///{tmp_path / 'junction.db'}",
        plugin_settings={"apps": {"restart_limit": 0}},
    ) as client:
        bus = client.app.state.services.get(EVENTS)
        async with bus.subscribe() as stream:
            body = {"command": [sys.executable, echo, "{port}"], "name": "echo"}
            app = (await client.post("/api/apps", json=body)).json()
            assert (await client.post(f"/api/apps/{app['id']}/start")).status_code == 200
            events = await _events(stream, APP_EVENTS, 2)
            assert [e["action"] for e in events] == ["start", "ready"]
            assert events[1]["app_id"] == app["id"]
            assert events[1]["name"] == "echo"
            assert events[1]["username"] == app["owner"]
            assert (await client.post(f"/api/apps/{app['id']}/stop")).status_code == 200
            assert (await _events(stream, APP_EVENTS, 1))[0]["action"] == "stop"

            crash = [sys.executable, "-c", "raise SystemExit(3)", "{port}"]
            broken = (await client.post("/api/apps", json={"command": crash})).json()
            await client.post(f"/api/apps/{broken['id']}/start")
            events = await _events(stream, APP_EVENTS, 2)
            assert [e["action"] for e in events] == ["start", "failed"]
            assert "code 3" in events[1]["msg"]


async def test_login_and_logout_are_events(tmp_path: Path) -> None:
    async with app_client(authenticated=False) as client:
        bus = client.app.state.services.get(EVENTS)
        async with bus.subscribe() as stream:
            form = await client.get("/login")
            xsrf = form.cookies["_xsrf"]
            failed = await client.post("/login", data={"password": "wrong", "_xsrf": xsrf})
            assert failed.status_code == 401
            good = await client.post(
                "/login", data={"password": "junction-test-token", "_xsrf": xsrf}
            )
            assert good.status_code == 302
            assert (await client.get("/logout")).status_code == 200
            events = await _events(stream, AUTH_EVENTS, 3)
    assert [(e["action"], e["username"]) for e in events] == [
        ("login_failed", None),
        ("login", _me()),
        ("logout", _me()),
    ]


CLIENT_SCHEMA: dict[str, Any] = {
    "$id": "https://example.org/junction/client/v1",
    "version": "1",
    "type": "object",
    "properties": {"n": {"type": "integer"}},
}


def _post(schema_id: str, data: dict[str, Any]) -> dict[str, Any]:
    return {"schema_id": schema_id, "version": "1", "data": data}


async def test_clients_post_only_client_schemas_small_and_slowly(tmp_path: Path) -> None:
    async with app_client(root_dir=tmp_path, enable=["frontend", "lab"]) as client:
        bus = client.app.state.services.get(EVENTS)
        bus.register(CLIENT_SCHEMA, from_clients=True)
        client_id = CLIENT_SCHEMA["$id"]
        async with bus.subscribe() as stream:
            posted = await client.post("/api/events", json=_post(client_id, {"n": 1}))
            assert posted.status_code == 204, posted.text
            assert stream.receive_nowait()["n"] == 1
            # The server's own events cannot be forged, not even with valid data.
            for schema_id, data in [
                (CONTENTS_EVENTS, SAVE),
                (AUTH_EVENTS, {"action": "login"}),
                (APP_EVENTS, {"action": "stop", "app_id": "x"}),
            ]:
                forged = await client.post("/api/events", json=_post(schema_id, data))
                assert forged.status_code == 403, forged.text
                assert forged.json()["reason"] == "ServerEvent"
            with pytest.raises(anyio.WouldBlock):
                stream.receive_nowait()

        big = _post(client_id, {"n": 1, "pad": "x" * 70_000})
        too_large = await client.post("/api/events", json=big)
        assert too_large.status_code == 413, too_large.text
        assert set(too_large.json()) == {"message", "reason"}

        async def chunks() -> Any:  # no Content-Length: counted as it arrives
            yield b'{"schema_id": "' + client_id.encode() + b'", "pad": "'
            for _ in range(70):
                yield b"x" * 1024
            yield b'"}'

        streamed = await client.post("/api/events", content=chunks())
        assert streamed.status_code == 413, streamed.text

        # A burst of 100 passes, then posting faster than 20 a second is refused.
        statuses = []
        for _ in range(1000):
            answer = await client.post("/api/events", json=_post(client_id, {"n": 2}))
            statuses.append(answer.status_code)
            if answer.status_code != 204:
                break
        assert statuses[-1] == 429, statuses[-5:]
        assert len(statuses) > 100 - 4  # the burst, less the four posts above
        assert answer.json()["reason"] == "Too Many Requests"
