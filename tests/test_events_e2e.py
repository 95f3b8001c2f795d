"""Server events on a real uvicorn server: what a client subscribed to
``/api/events/subscribe`` sees when files, kernels, sessions and terminals change, what the
JSON-lines event log holds, and who sees whose events in multi-user mode."""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import anyio
import httpx
import pytest
import websockets
from jsonschema import Draft7Validator

from junction.eventschemas import (
    AUTH_EVENTS,
    CONTENTS_EVENTS,
    KERNEL_ACTIONS,
    SCHEMAS,
    SESSION_EVENTS,
    TERMINAL_EVENTS,
)
from junction.testing import TEST_TOKEN, serve_in_thread

pytestmark = pytest.mark.anyio

ADMIN = {"Authorization": f"token {TEST_TOKEN}"}
VALIDATORS = {schema["$id"]: Draft7Validator(schema) for schema in SCHEMAS}


def _check(event: dict[str, Any]) -> dict[str, Any]:
    """Validate a received event against its schema (the wire form minus ``schema_id``)."""
    data = {k: v for k, v in event.items() if k != "schema_id"}
    VALIDATORS[event["schema_id"]].validate(data)
    assert data["timestamp"].endswith("Z")
    return event


async def _next(socket: Any, schema_id: str, **fields: Any) -> dict[str, Any]:
    """The next event of ``schema_id`` with ``fields``; other events are skipped."""
    with anyio.fail_after(30):
        while True:
            event = _check(json.loads(await socket.recv()))
            matches = all(event.get(k) == v for k, v in fields.items())
            if event["schema_id"] == schema_id and matches:
                return event


async def _first(socket: Any) -> dict[str, Any]:
    """The next event, whatever it is."""
    with anyio.fail_after(30):
        return _check(json.loads(await socket.recv()))


def _subscribe(url: str, headers: dict[str, str]) -> Any:
    return websockets.connect(
        url.replace("http://", "ws://") + "api/events/subscribe", additional_headers=headers
    )


@pytest.fixture
def server(tmp_path: Path) -> Iterator[tuple[str, Path]]:
    """Contents, kernels, sessions, terminals and the lab's event routes, with an event log."""
    root = tmp_path / "root"
    root.mkdir()
    log_path = tmp_path / "logs" / "events.jsonl"
    with serve_in_thread(
        root_dir=root,
        enable=["contents", "kernelspecs", "kernels", "sessions", "terminals", "frontend", "lab"],
        plugin_settings={
            "lab": {"data_dir": str(tmp_path / "lab")},
            # Not the login shell: killing it mid-startup could leave its rc files' locks.
            "terminals": {"shell_command": ["/bin/sh"]},
        },
        event_log_path=str(log_path),
    ) as (url, _):
        yield url, log_path


async def test_actions_on_the_server_reach_a_subscriber_and_the_event_log(
    server: tuple[str, Path],
) -> None:
    url, log_path = server
    async with (
        httpx.AsyncClient(base_url=url, headers=ADMIN, timeout=60) as client,
        _subscribe(url, ADMIN) as socket,
    ):
        saved = await client.put(
            "/api/contents/a.txt", json={"type": "file", "format": "text", "content": "hi"}
        )
        assert saved.status_code == 201, saved.text
        event = await _next(socket, CONTENTS_EVENTS)
        assert (event["action"], event["path"]) == ("upload", "a.txt")
        assert event["username"]  # the token holder

        resaved = await client.put(
            "/api/contents/a.txt", json={"type": "file", "format": "text", "content": "hi!"}
        )
        assert resaved.status_code == 200
        assert (await _next(socket, CONTENTS_EVENTS))["action"] == "save"

        renamed = await client.patch("/api/contents/a.txt", json={"path": "b.txt"})
        assert renamed.status_code == 200
        event = await _next(socket, CONTENTS_EVENTS)
        assert (event["action"], event["path"]) == ("rename", "b.txt")
        assert event["source_path"] == "a.txt"

        assert (await client.delete("/api/contents/b.txt")).status_code == 204
        assert (await _next(socket, CONTENTS_EVENTS))["action"] == "delete"

        started = await client.post("/api/kernels", json={})
        assert started.status_code == 201, started.text
        kernel_id = started.json()["id"]
        event = await _next(socket, KERNEL_ACTIONS, action="start")
        assert (event["kernel_id"], event["status"]) == (kernel_id, "success")
        assert event["kernel_name"] == started.json()["name"]
        assert (await client.delete(f"/api/kernels/{kernel_id}")).status_code == 204
        event = await _next(socket, KERNEL_ACTIONS, action="shutdown")
        assert event["msg"] == f"Kernel {kernel_id} was shutdown."

        terminal = (await client.post("/api/terminals")).json()["name"]
        event = await _next(socket, TERMINAL_EVENTS, action="create")
        assert event["name"] == terminal
        assert (await client.delete(f"/api/terminals/{terminal}")).status_code == 204
        assert (await _next(socket, TERMINAL_EVENTS, action="delete"))["name"] == terminal

    # The log is written off the event loop: wait for the last event to land.
    with anyio.fail_after(10):
        while b'"delete","name"' not in (log_path.read_bytes() if log_path.exists() else b""):
            await anyio.sleep(0.05)
    records = [json.loads(line) for line in log_path.read_text().splitlines()]
    assert [(r["__schema__"], r["action"]) for r in records] == [
        (CONTENTS_EVENTS, "upload"),
        (CONTENTS_EVENTS, "save"),
        (CONTENTS_EVENTS, "rename"),
        (CONTENTS_EVENTS, "delete"),
        (KERNEL_ACTIONS, "start"),
        (KERNEL_ACTIONS, "shutdown"),
        (TERMINAL_EVENTS, "create"),
        (TERMINAL_EVENTS, "delete"),
    ]
    assert all(r["__metadata_version__"] == 1 and r["__schema_version__"] == "1" for r in records)
    assert log_path.stat().st_mode & 0o777 == 0o600


async def test_a_session_reports_itself_and_the_kernel_it_started(
    server: tuple[str, Path],
) -> None:
    url, _ = server
    async with (
        httpx.AsyncClient(base_url=url, headers=ADMIN, timeout=60) as client,
        _subscribe(url, ADMIN) as socket,
    ):
        created = await client.post(
            "/api/sessions", json={"path": "n.ipynb", "type": "notebook", "kernel": {}}
        )
        assert created.status_code == 201, created.text
        session = created.json()
        event = await _next(socket, SESSION_EVENTS, action="create")
        assert (event["session_id"], event["path"]) == (session["id"], "n.ipynb")
        assert event["kernel_id"] == session["kernel"]["id"]
        started = await _next(socket, KERNEL_ACTIONS, action="start")
        assert started["kernel_id"] == session["kernel"]["id"]
        assert (await client.delete(f"/api/sessions/{session['id']}")).status_code == 204
        event = await _next(socket, SESSION_EVENTS, action="delete")
        assert event["session_id"] == session["id"]


async def test_users_see_their_own_events_and_admins_see_everyone_s(tmp_path: Path) -> None:
    with serve_in_thread(
        root_dir=tmp_path,
        enable=["contents", "frontend", "lab", "users"],
        plugin_settings={"lab": {"data_dir": str(tmp_path / "lab")}},
        database_url=f"sqlite+aiosqlite:///{tmp_path / 'junction.db'}",
    ) as (url, _):
        async with httpx.AsyncClient(base_url=url, headers=ADMIN, timeout=60) as admin:
            tokens = {}
            for name in ("ana", "bob"):
                assert (await admin.post("/api/users", json={"name": name})).status_code == 201
                token = (await admin.post(f"/api/users/{name}/tokens")).json()["token"]
                tokens[name] = {"Authorization": f"token {token}"}

            async def save(name: str) -> None:
                response = await admin.put(
                    f"/api/contents/home/{name}/{name}.txt",
                    headers=tokens[name],
                    json={"type": "file", "format": "text", "content": name},
                )
                assert response.status_code == 201, response.text

            async with (
                _subscribe(url, ADMIN) as everyone,
                _subscribe(url, tokens["ana"]) as ana,
                _subscribe(url, tokens["bob"]) as bob,
            ):
                # Opening their sockets was the first use of each token: the admin hears it.
                for name in ("ana", "bob"):
                    used = await _next(everyone, AUTH_EVENTS, action="token_used")
                    assert used["username"] == name
                    assert isinstance(used["token_id"], int)
                await save("bob")
                await save("ana")
                # Each user's first event is their own save: the other's events (a token's
                # use, a save) never came.
                ana_event = await _first(ana)
                assert (ana_event["username"], ana_event["path"]) == ("ana", "home/ana/ana.txt")
                bob_event = await _first(bob)
                assert (bob_event["username"], bob_event["path"]) == ("bob", "home/bob/bob.txt")
                seen = [(await _next(everyone, CONTENTS_EVENTS))["username"] for _ in range(2)]
                assert seen == ["bob", "ana"]


async def test_subscribers_leaving_while_events_go_out_leave_no_traceback(
    server: tuple[str, Path], caplog: pytest.LogCaptureFixture
) -> None:
    """An event sent to a subscriber that has just closed its socket ends that subscription
    quietly; before, about one close in a hundred met an event on its way and logged an
    ASGI exception."""
    url, _ = server

    async def churn() -> None:
        for _ in range(50):
            async with _subscribe(url, ADMIN):
                pass

    async def events() -> None:
        async with httpx.AsyncClient(base_url=url, headers=ADMIN, timeout=30) as client:
            for i in range(300):
                body = {"type": "file", "format": "text", "content": str(i)}
                saved = await client.put(f"api/contents/f{i % 5}.txt", json=body)
                assert saved.status_code in (200, 201)

    with anyio.fail_after(100):
        async with anyio.create_task_group() as group:
            group.start_soon(events)
            for _ in range(10):
                group.start_soon(churn)
    failures = [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR]
    assert failures == []
