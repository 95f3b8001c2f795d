"""``/metrics`` on a real server: scraped with Prometheus' own parser before and after load."""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import anyio
import httpx
import pytest
import websockets
from fastapi import APIRouter
from prometheus_client.parser import text_string_to_metric_families

from junction.plugin import Plugin
from junction.testing import TEST_TOKEN, ServerProcess, app_client

AUTH = {"Authorization": f"token {TEST_TOKEN}"}
METRICS_TOKEN = "prometheus-scrape-secret"
MARKER = "zq7marker"
"""Appears in raw paths requested below, and so must never appear in a label."""

Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    """Kernels and contents, with a metrics token in the config file."""
    root = tmp_path_factory.mktemp("metrics")
    config = root / "junction.toml"
    config.write_text(f'metrics_token = "{METRICS_TOKEN}"\n')
    args = ["--config", str(config), "--profile", "none", "--port", "0", "--root-dir", str(root)]
    for name in ("kernelspecs", "kernels", "contents"):
        args += ["--enable", name]
    process = ServerProcess(args, log_path=root / "server.log").start()
    yield process
    process.stop()


def scrape(server: ServerProcess, token: str = METRICS_TOKEN) -> Samples:
    """Every sample of ``/metrics``, parsed by prometheus_client's text parser."""
    response = httpx.get(
        server.url + "metrics", headers={"Authorization": f"Bearer {token}"}, timeout=30
    )
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("text/plain")
    samples: Samples = {}
    for family in text_string_to_metric_families(response.text):
        for sample in family.samples:
            samples[(sample.name, frozenset(sample.labels.items()))] = sample.value
    return samples


def value(samples: Samples, name: str, **labels: str) -> float:
    """The sum of the samples of ``name`` whose labels include ``labels``."""
    wanted = set(labels.items())
    return sum(v for (n, ls), v in samples.items() if n == name and wanted <= ls)


def has(samples: Samples, name: str) -> bool:
    """Whether any sample of ``name`` exists."""
    return any(n == name for n, _ in samples)


async def execute(ws: Any, code: str) -> dict[str, Any]:
    """Run ``code`` over the JSON kernel protocol; return the execute_reply content."""
    msg_id = uuid.uuid4().hex
    await ws.send(
        json.dumps(
            {
                "channel": "shell",
                "header": {
                    "msg_id": msg_id,
                    "msg_type": "execute_request",
                    "username": "test",
                    "session": uuid.uuid4().hex,
                    "date": "2026-01-01T00:00:00Z",
                    "version": "5.3",
                },
                "parent_header": {},
                "metadata": {},
                "content": {"code": code, "silent": False, "store_history": True},
                "buffers": [],
            }
        )
    )
    with anyio.fail_after(60):
        while True:
            message = json.loads(await ws.recv())
            if (
                message["channel"] == "shell"
                and message["parent_header"].get("msg_id") == msg_id
                and message["header"]["msg_type"] == "execute_reply"
            ):
                return dict(message["content"])


def wait_for(condition: Any, timeout: float = 30) -> None:
    """Poll ``condition`` until it is true; fail after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "condition not reached in time"
        time.sleep(0.05)


@pytest.mark.e2e
@pytest.mark.anyio
async def test_metrics_follow_requests_kernels_and_websocket_traffic(
    server: ServerProcess,
) -> None:
    before = scrape(server)
    status_route = {"method": "GET", "route": "/api/status"}
    for _ in range(5):
        assert httpx.get(server.url + "api/status", headers=AUTH).status_code == 200
    missing = httpx.get(server.url + f"api/contents/{MARKER}-missing.txt", headers=AUTH)
    assert missing.status_code == 404
    unknown = httpx.get(server.url + f"{MARKER}/nowhere", headers=AUTH)
    assert unknown.status_code == 404

    started = httpx.post(server.url + "api/kernels", headers=AUTH, json={}, timeout=60)
    assert started.status_code == 201, started.text
    kernel_id = started.json()["id"]
    ws_url = server.url.replace("http://", "ws://", 1) + f"api/kernels/{kernel_id}/channels"
    async with websockets.connect(ws_url, additional_headers=AUTH, max_size=None) as ws:
        for n in range(3):
            reply = await execute(ws, f"print({n})")
            assert reply["status"] == "ok"
        during = scrape(server)

    after_requests = value(during, "junction_http_request_duration_seconds_count", **status_route)
    assert (
        after_requests
        - value(before, "junction_http_request_duration_seconds_count", **status_route)
        >= 5
    )
    assert (
        value(during, "junction_http_request_duration_seconds_bucket", le="+Inf", **status_route)
        == after_requests
    )
    assert value(during, "junction_http_request_duration_seconds_sum", **status_route) > 0
    assert (
        value(during, "junction_http_responses_total", status_class="4xx")
        - value(before, "junction_http_responses_total", status_class="4xx")
        >= 2
    )
    assert value(during, "junction_http_responses_total", status_class="2xx", **status_route) >= 5
    assert value(during, "junction_http_responses_total", route="/api/contents/{path}") >= 1
    assert value(during, "junction_http_responses_total", route="unmatched") >= 1
    assert value(during, "junction_http_responses_total", route="/api/kernels") >= 1

    assert value(during, "junction_kernels", spec="python3") == 1
    assert value(during, "junction_kernel_websocket_connections") == 1
    for direction, channel in (("from_client", "shell"), ("to_client", "shell")):
        labels = {"direction": direction, "channel": channel}
        grown = value(during, "junction_kernel_websocket_messages_total", **labels) - value(
            before, "junction_kernel_websocket_messages_total", **labels
        )
        assert grown >= 3, (direction, channel)
        assert value(during, "junction_kernel_websocket_bytes_total", **labels) > value(
            before, "junction_kernel_websocket_bytes_total", **labels
        )
    assert (
        value(
            during,
            "junction_kernel_websocket_messages_total",
            direction="to_client",
            channel="iopub",
        )
        >= 3 * 3
    )  # busy, execute_input, stream and idle for each execute

    assert has(during, "junction_event_loop_lag_seconds")
    assert value(during, "junction_event_loop_lag_seconds") >= 0
    assert value(during, "process_resident_memory_bytes") > 0
    assert value(during, "process_open_fds") > 0
    assert value(during, "junction_terminals") == 0

    for _, label_set in during:
        for _, label_value in label_set:
            assert MARKER not in label_value
            assert kernel_id not in label_value

    wait_for(lambda: value(scrape(server), "junction_kernel_websocket_connections") == 0)
    response = httpx.delete(server.url + f"api/kernels/{kernel_id}", headers=AUTH, timeout=60)
    assert response.status_code == 204
    wait_for(lambda: value(scrape(server), "junction_kernels") == 0)


@pytest.mark.e2e
def test_metrics_refuse_requests_without_credentials(server: ServerProcess) -> None:
    url = server.url + "metrics"
    anonymous = httpx.get(url)
    assert anonymous.status_code == 401
    assert anonymous.json()["reason"] == "Unauthorized"
    assert "junction_" not in anonymous.text
    wrong = httpx.get(url, headers={"Authorization": "Bearer not-the-metrics-token"})
    assert wrong.status_code == 401
    assert httpx.get(url, params={"token": METRICS_TOKEN}).status_code == 401


@pytest.mark.e2e
def test_metrics_accept_the_server_token(server: ServerProcess) -> None:
    assert has(scrape(server, token=TEST_TOKEN), "junction_http_request_duration_seconds_bucket")


@pytest.mark.e2e
def test_metrics_token_opens_nothing_else(server: ServerProcess) -> None:
    headers = {"Authorization": f"Bearer {METRICS_TOKEN}"}
    assert has(scrape(server), "junction_http_responses_total")
    assert httpx.get(server.url + "api/contents", headers=headers).status_code == 403
    assert httpx.get(server.url + "api/kernels", headers=headers).status_code == 403
    assert httpx.post(server.url + "api/kernels", headers=headers, json={}).status_code == 403


@pytest.mark.e2e
def test_metrics_cover_every_route_by_template(tmp_path: Path, server: ServerProcess) -> None:
    before = scrape(server)
    name = f"{MARKER}-{uuid.uuid4().hex}.txt"
    (Path(server.log_path).parent / name).write_text("hello")
    response = httpx.get(server.url + f"api/contents/{name}", headers=AUTH)
    assert response.status_code == 200
    after = scrape(server)
    route = {"method": "GET", "route": "/api/contents/{path}", "status_class": "2xx"}
    assert value(after, "junction_http_responses_total", **route) == (
        value(before, "junction_http_responses_total", **route) + 1
    )
    assert not any(name in v for (_, labels) in after for _, v in labels)


# -- in-process -------------------------------------------------------------------------------


def _families(body: str) -> Samples:
    samples: Samples = {}
    for family in text_string_to_metric_families(body):
        for sample in family.samples:
            samples[(sample.name, frozenset(sample.labels.items()))] = sample.value
    return samples


def _probe_plugin() -> Plugin:
    router = APIRouter()

    @router.get("/api/probe/{item_id}")
    async def probe(item_id: str) -> dict[str, str]:
        if item_id == "boom":
            raise RuntimeError("unexpected")
        return {"item": item_id}

    @router.post("/api/probe/block")
    async def block() -> dict[str, str]:
        time.sleep(1.5)  # blocks the event loop on purpose, as careless code would
        return {}

    return Plugin(name="probe", description="routes to measure", routers=[router])


@pytest.mark.anyio
async def test_requests_are_labelled_by_template_and_errors_by_class() -> None:
    async with app_client(plugins=[_probe_plugin()], base_url="/user/ana/") as client:
        for item in ("one", "two", "three"):
            assert (await client.get(f"/user/ana/api/probe/{item}")).status_code == 200
        with pytest.raises(RuntimeError):  # in-process, the error reaches the client too
            await client.get("/user/ana/api/probe/boom")
        assert (await client.request("PURGE", "/user/ana/api/probe/one")).status_code == 405
        samples = _families((await client.get("/user/ana/metrics")).text)
    route = "/api/probe/{item_id}"
    assert value(samples, "junction_http_responses_total", route=route, status_class="2xx") == 3
    assert value(samples, "junction_http_responses_total", route=route, status_class="5xx") == 1
    assert value(samples, "junction_http_responses_total", method="other") == 1
    labels = {v for (_, label_set) in samples for _, v in label_set}
    assert not labels & {"one", "two", "three", "boom", "PURGE"}


@pytest.mark.anyio
async def test_a_blocked_event_loop_shows_as_lag() -> None:
    async with app_client(plugins=[_probe_plugin()]) as client:
        assert (await client.post("/api/probe/block")).status_code == 200
        with anyio.fail_after(30):
            while True:
                samples = _families((await client.get("/metrics")).text)
                if value(samples, "junction_event_loop_lag_max_seconds") >= 0.4:
                    break
                await anyio.sleep(0.1)


@pytest.mark.anyio
async def test_metrics_in_multi_user_mode_need_an_admin_or_the_metrics_token() -> None:
    async with app_client(enable=["users"], metrics_token=METRICS_TOKEN) as admin:
        created = await admin.post("/api/users", json={"name": "ana"})
        assert created.status_code == 201, created.text
        token = (await admin.post("/api/users/ana/tokens")).json()["token"]
        ana = {"Authorization": f"token {token}"}
        assert (await admin.get("/metrics", headers=ana)).status_code == 401
        assert (await admin.get("/metrics")).status_code == 200
        metrics_only = {"Authorization": f"Bearer {METRICS_TOKEN}"}
        assert (await admin.get("/metrics", headers=metrics_only)).status_code == 200
        assert (await admin.get("/api/users", headers=metrics_only)).status_code == 403
