"""Health routes: unauthenticated, telling nothing but ok or unavailable."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import anyio
import httpx
import pytest
from asgi_lifespan import LifespanManager

from junction.app import create_app
from junction.testing import ServerProcess, app_client, make_settings

OK = {"status": "ok"}
UNAVAILABLE = {"status": "unavailable"}


@pytest.mark.anyio
async def test_health_routes_answer_without_credentials() -> None:
    async with app_client(authenticated=False) as client:
        for path in ("/api/health/live", "/api/health/ready"):
            response = await client.get(path)
            assert response.status_code == 200
            assert response.json() == OK
            assert response.headers["content-type"] == "application/json"
        assert (await client.get("/api/status")).status_code == 403


@pytest.mark.anyio
async def test_health_bodies_name_no_version_and_no_plugin() -> None:
    async with app_client(authenticated=False, enable=["kernelspecs"]) as client:
        for path in ("/api/health/live", "/api/health/ready"):
            text = (await client.get(path)).text
            assert text == '{"status":"ok"}'
            assert "kernelspecs" not in text


@pytest.mark.anyio
async def test_ready_is_unavailable_while_a_check_fails() -> None:
    healthy = True

    async def check() -> None:
        if not healthy:
            raise ConnectionError("database unreachable")

    async with app_client(authenticated=False) as client:
        client.app.state.health.checks.append(check)
        assert (await client.get("/api/health/ready")).json() == OK
        healthy = False
        response = await client.get("/api/health/ready")
        assert response.status_code == 503
        assert response.json() == UNAVAILABLE
        assert "database" not in response.text
        live = await client.get("/api/health/live")
        assert live.status_code == 200
        healthy = True
        assert (await client.get("/api/health/ready")).status_code == 200


@pytest.mark.anyio
async def test_ready_is_unavailable_when_a_check_hangs(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("junction.health.CHECK_TIMEOUT", 0.05)

    async def hang() -> None:
        await anyio.sleep_forever()

    async with app_client(authenticated=False) as client:
        client.app.state.health.checks.append(hang)
        response = await client.get("/api/health/ready")
        assert response.status_code == 503
        assert response.json() == UNAVAILABLE


@pytest.mark.anyio
async def test_ready_is_unavailable_before_plugins_start_and_after_they_stop() -> None:
    app = create_app(make_settings())
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://localhost:8888") as client:
        before = await client.get("/api/health/ready")
        assert before.status_code == 503
        assert before.json() == UNAVAILABLE
        async with LifespanManager(app):
            assert (await client.get("/api/health/ready")).status_code == 200
        assert (await client.get("/api/health/ready")).status_code == 503


@pytest.mark.anyio
async def test_health_routes_follow_the_base_url() -> None:
    async with app_client(authenticated=False, base_url="/user/ana/") as client:
        assert (await client.get("/user/ana/api/health/live")).json() == OK
        assert (await client.get("/user/ana/api/health/ready")).json() == OK
        assert (await client.get("/api/health/live")).status_code == 404


@pytest.mark.anyio
async def test_health_paths_open_nothing_beside_them() -> None:
    async with app_client(authenticated=False) as client:
        for path in (
            "/api/health/live/../../status",
            "/api/health/livex",
            "/api/health/ready/",
            "/api/health",
        ):
            assert (await client.get(path)).status_code in (403, 404), path


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    """A real ``junction``, the core alone."""
    root = tmp_path_factory.mktemp("health")
    args = ["--profile", "none", "--port", "0", "--root-dir", str(root)]
    process = ServerProcess(args, log_path=Path(root) / "server.log").start()
    yield process
    process.stop()


@pytest.mark.e2e
def test_health_routes_on_a_real_server(server: ServerProcess) -> None:
    for path in ("api/health/live", "api/health/ready"):
        response = httpx.get(server.url + path)
        assert response.status_code == 200
        assert response.json() == OK
        assert response.headers["x-request-id"]
    assert httpx.get(server.url + "api/contents").status_code == 403


@pytest.mark.anyio
async def test_ready_follows_the_database(
    postgres_cluster: Any,  # conftest_pg.PostgresCluster
    postgres_url: str,
) -> None:
    name = postgres_url.rsplit("/", 1)[1]
    async with app_client(authenticated=False, database_url=postgres_url) as client:
        assert (await client.get("/api/health/ready")).json() == OK
        postgres_cluster.sql(f"ALTER DATABASE {name} ALLOW_CONNECTIONS false")
        terminate = (
            f"SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = '{name}'"  # noqa: S608 - a name the fixture made
        )
        postgres_cluster.sql(terminate)
        response = await client.get("/api/health/ready")
        assert response.status_code == 503
        assert response.json() == UNAVAILABLE
        assert (await client.get("/api/health/live")).status_code == 200
        postgres_cluster.sql(f"ALTER DATABASE {name} ALLOW_CONNECTIONS true")
        with anyio.fail_after(30):
            while (await client.get("/api/health/ready")).status_code != 200:
                await anyio.sleep(0.05)
