"""JSON log lines, request ids, and secrets scrubbed in both formats."""

from __future__ import annotations

import json
import logging
import re
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import APIRouter

from junction.logs import REQUEST_ID, JSONFormatter, SecretScrubber, TextFormatter
from junction.plugin import Plugin
from junction.testing import TEST_TOKEN, ServerProcess, app_client


def _record(message: str, *args: Any, **extra: Any) -> logging.LogRecord:
    record = logging.LogRecord(
        "junction.kernels", logging.WARNING, __file__, 7, message, args or None, None
    )
    for key, value in extra.items():
        setattr(record, key, value)
    return record


def _format_json(record: logging.LogRecord) -> dict[str, Any]:
    SecretScrubber().filter(record)
    line = JSONFormatter().format(record)
    assert "\n" not in line
    parsed: dict[str, Any] = json.loads(line)
    return parsed


def test_json_lines_carry_time_level_logger_message_and_extra_fields() -> None:
    line = _format_json(_record("kernel %s died", "k1", kernel_id="k1", restarts=2))
    assert line["level"] == "warning"
    assert line["logger"] == "junction.kernels"
    assert line["message"] == "kernel k1 died"
    assert line["kernel_id"] == "k1"
    assert line["restarts"] == 2
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}\+00:00", line["time"])
    assert "request_id" not in line
    assert "args" not in line
    assert "msg" not in line


def test_json_lines_scrub_secrets_in_message_extra_fields_and_tracebacks() -> None:
    try:
        raise ValueError("bad url /api?token=s3cr3t-value")
    except ValueError:
        record = _record("GET %s", "/api/contents?token=abcdef123&x=1", url="/lab?_xsrf=zzz")
        record.exc_info = __import__("sys").exc_info()
    line = _format_json(record)
    text = json.dumps(line)
    for secret in ("abcdef123", "zzz", "s3cr3t-value"):
        assert secret not in text
    assert line["message"] == "GET /api/contents?token=[secret]&x=1"
    assert line["url"] == "/lab?_xsrf=[secret]"
    assert "ValueError" in line["exception"]


def test_json_lines_hold_values_json_cannot_as_text() -> None:
    line = _format_json(_record("x", path=Path("/tmp/a"), pair=(1, 2)))
    assert line["path"] == repr(Path("/tmp/a"))
    assert line["pair"] == [1, 2]


def test_text_lines_scrub_tracebacks_too() -> None:
    try:
        raise RuntimeError("?token=leaked-token-value")
    except RuntimeError:
        record = _record("failed")
        record.exc_info = __import__("sys").exc_info()
    text = TextFormatter().format(record)
    assert "leaked-token-value" not in text
    assert "token=[secret]" in text


def test_lines_carry_the_request_id_while_it_is_set() -> None:
    reset = REQUEST_ID.set("abc-123")
    try:
        assert _format_json(_record("hello"))["request_id"] == "abc-123"
        assert "abc-123]" in TextFormatter().format(_record("hello"))
    finally:
        REQUEST_ID.reset(reset)
    assert "abc-123" not in TextFormatter().format(_record("hello"))


class _Lines(logging.Handler):
    """Collects formatted JSON lines."""

    def __init__(self) -> None:
        super().__init__()
        self.setFormatter(JSONFormatter())
        self.lines: list[dict[str, Any]] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(json.loads(self.format(record)))


def _logging_plugin() -> Plugin:
    router = APIRouter()
    log = logging.getLogger("junction.probe")

    @router.get("/api/probe")
    async def probe() -> dict[str, str]:
        log.warning("first line")
        log.warning("second line", extra={"step": 2})
        return {"request_id": str(REQUEST_ID.get())}

    return Plugin(name="probe", description="logs twice", routers=[router])


@pytest.fixture
def lines() -> Iterator[_Lines]:
    """JSON lines of the ``junction.probe`` logger."""
    handler = _Lines()
    logger = logging.getLogger("junction.probe")
    logger.addHandler(handler)
    try:
        yield handler
    finally:
        logger.removeHandler(handler)


@pytest.mark.anyio
async def test_every_line_of_a_request_carries_its_id(lines: _Lines) -> None:
    async with app_client(plugins=[_logging_plugin()]) as client:
        first = await client.get("/api/probe")
        second = await client.get("/api/probe")
    ids = [first.headers["x-request-id"], second.headers["x-request-id"]]
    assert ids[0] != ids[1]
    assert first.json()["request_id"] == ids[0]
    assert [line["request_id"] for line in lines.lines] == [ids[0], ids[0], ids[1], ids[1]]
    assert lines.lines[1]["step"] == 2
    assert REQUEST_ID.get() is None


@pytest.mark.anyio
@pytest.mark.parametrize(
    ("sent", "kept"),
    [
        ("req-42", True),
        ("0f8fad5b-d9cb-469f-a165-70867728950e", True),
        ("trace:abc/def=", True),
        ("x" * 128, True),
        ("x" * 129, False),
        ("has space", False),
        ('quote"inside', False),
        ("", False),
    ],
)
async def test_incoming_request_ids_are_kept_only_when_sane(sent: str, kept: bool) -> None:
    async with app_client(plugins=[_logging_plugin()]) as client:
        response = await client.get("/api/probe", headers={"X-Request-ID": sent})
    echoed = response.headers["x-request-id"]
    assert (echoed == sent) is kept
    assert response.json()["request_id"] == echoed
    assert re.fullmatch(r"[A-Za-z0-9._:@/+=-]{1,128}", echoed)


@pytest.mark.anyio
async def test_refused_requests_get_an_id_too() -> None:
    async with app_client(authenticated=False) as client:
        response = await client.get("/api/status", headers={"X-Request-ID": "refused-1"})
    assert response.status_code == 403
    assert response.headers["x-request-id"] == "refused-1"


@pytest.fixture(scope="module")
def json_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    """A real ``junction`` logging JSON lines."""
    root = tmp_path_factory.mktemp("json-logs")
    config = root / "junction.toml"
    config.write_text('log_format = "json"\n')
    args = ["--config", str(config), "--profile", "none", "--port", "0"]
    args += ["--root-dir", str(root)]
    process = ServerProcess(args, log_path=root / "server.log").start()
    yield process
    process.stop()


def _json_lines(server: ServerProcess) -> list[dict[str, Any]]:
    parsed = []
    for line in server.log().splitlines():
        if line.startswith("{"):
            parsed.append(json.loads(line))
    return parsed


@pytest.mark.e2e
def test_a_real_server_logs_json_lines_with_request_ids_and_no_secrets(
    json_server: ServerProcess,
) -> None:
    url = json_server.url + f"api/contents/missing.txt?token={TEST_TOKEN}"
    response = httpx.get(url, headers={"X-Request-ID": "e2e-json-1"})
    assert response.status_code == 404
    assert response.headers["x-request-id"] == "e2e-json-1"
    deadline = time.monotonic() + 30
    while not any(line.get("request_id") == "e2e-json-1" for line in _json_lines(json_server)):
        assert time.monotonic() < deadline, json_server.log()
        time.sleep(0.05)
    lines = _json_lines(json_server)
    ours = [line for line in lines if line.get("request_id") == "e2e-json-1"]
    assert any(line["logger"] == "uvicorn.access" for line in ours)
    assert all({"time", "level", "logger", "message"} <= set(line) for line in lines)
    assert any(line["logger"].startswith("junction") for line in lines)
    assert TEST_TOKEN not in json_server.log()
    assert "token=[secret]" in json.dumps(ours)
