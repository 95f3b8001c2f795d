"""The replicas' nginx configuration on real nginx, with no replica up: what clients get."""

from __future__ import annotations

import signal
import subprocess
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from junction.deploy import ReplicasLayout
from junction.testing import free_port

from .replicas import start_nginx

pytestmark = pytest.mark.e2e


@pytest.fixture
def nginx_without_replicas(tmp_path: Path) -> Iterator[str]:
    """nginx in front of two addresses where nothing listens; yields its URL."""
    port = free_port()
    layout = ReplicasLayout(
        listen=f"127.0.0.1:{port}",
        replicas=(f"127.0.0.1:{free_port()}", f"127.0.0.1:{free_port()}"),
    )
    process = start_nginx(layout, tmp_path / "nginx", port)
    try:
        yield f"http://127.0.0.1:{port}/"
    finally:
        process.send_signal(signal.SIGQUIT)
        try:
            process.wait(10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def test_no_reachable_replica_gives_a_jupyter_json_503(nginx_without_replicas: str) -> None:
    for method, path in [("GET", "api/contents"), ("POST", "api/sessions"), ("GET", "lab")]:
        response = httpx.request(method, nginx_without_replicas + path, timeout=30)
        assert response.status_code == 503, (method, path)
        assert response.headers["content-type"] == "application/json"
        assert response.json() == {
            "message": "No Junction replica is reachable; try again shortly",
            "reason": "Service Unavailable",
        }


def test_a_browser_without_credentials_gets_an_affinity_cookie(
    nginx_without_replicas: str,
) -> None:
    first = httpx.get(nginx_without_replicas + "api/terminals", timeout=30)
    cookie = first.cookies.get("junction_affinity")
    assert cookie is not None
    assert len(cookie) == 32
    assert "HttpOnly" in first.headers["set-cookie"]
    again = httpx.get(
        nginx_without_replicas + "api/terminals", cookies={"junction_affinity": cookie}, timeout=30
    )
    assert "set-cookie" not in again.headers
