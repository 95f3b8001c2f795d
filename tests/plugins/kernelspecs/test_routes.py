"""The kernel specs API over jupyter_client's KernelSpecManager, in-process."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest
from asgi_lifespan import LifespanManager

from junction.app import create_app
from junction.testing import TEST_TOKEN, app_client, make_settings

pytestmark = pytest.mark.anyio

PNG = b"\x89PNG\r\n\x1a\nfake-logo"


@asynccontextmanager
async def _client(**settings: Any) -> AsyncIterator[httpx.AsyncClient]:
    """Like ``app_client``, but ``settings`` may hold plugin sections (``plugins={...}``)."""
    app = create_app(make_settings(**settings))
    async with LifespanManager(app) as manager:
        transport = httpx.ASGITransport(app=manager.app)
        headers = {"Authorization": f"token {TEST_TOKEN}"}
        async with httpx.AsyncClient(
            transport=transport, base_url="http://localhost:8888", headers=headers
        ) as client:
            yield client


def _install_spec(jupyter_path: Path, name: str, display_name: str = "Echo") -> Path:
    directory = jupyter_path / "kernels" / name
    directory.mkdir(parents=True)
    spec = {
        "argv": ["python", "-c", "pass", "{connection_file}"],
        "display_name": display_name,
        "language": "text",
    }
    (directory / "kernel.json").write_text(json.dumps(spec))
    return directory


@pytest.fixture
def jupyter_path(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A JUPYTER_PATH entry holding one spec, ``echo``, with a logo and kernel.js."""
    path = tmp_path / "share"
    directory = _install_spec(path, "echo")
    (directory / "logo-64x64.png").write_bytes(PNG)
    (directory / "kernel.js").write_text("// nothing")
    (directory / "notes.txt").write_text("not a resource")
    monkeypatch.setenv("JUPYTER_PATH", str(path))
    return path


async def test_listing_has_the_default_and_every_spec_with_base_url_resources(
    jupyter_path: Path,
) -> None:
    async with app_client(enable=["kernelspecs"], base_url="/base/") as client:
        response = await client.get("/base/api/kernelspecs")
    assert response.status_code == 200
    body = response.json()
    assert body["default"] == "python3"
    assert {"python3", "echo"} <= set(body["kernelspecs"])
    echo = body["kernelspecs"]["echo"]
    assert echo["name"] == "echo"
    assert echo["spec"]["display_name"] == "Echo"
    assert echo["spec"]["argv"][-1] == "{connection_file}"
    assert echo["resources"] == {
        "logo-64x64": "/base/kernelspecs/echo/logo-64x64.png",
        "kernel.js": "/base/kernelspecs/echo/kernel.js",
    }
    python = body["kernelspecs"]["python3"]
    assert python["spec"]["language"] == "python"
    assert set(python["resources"]) >= {"logo-32x32", "logo-64x64"}


async def test_one_spec_by_name(jupyter_path: Path) -> None:
    async with app_client(enable=["kernelspecs"]) as client:
        response = await client.get("/api/kernelspecs/echo")
    assert response.status_code == 200
    assert response.json()["resources"]["kernel.js"] == "/kernelspecs/echo/kernel.js"


async def test_unknown_spec_is_404_with_a_message(jupyter_path: Path) -> None:
    async with app_client(enable=["kernelspecs"]) as client:
        response = await client.get("/api/kernelspecs/nope")
    assert response.status_code == 404
    assert response.json() == {"message": "No such kernel named nope", "reason": "No such kernel"}


async def test_resource_files_are_served_and_nothing_outside_the_spec(
    jupyter_path: Path,
) -> None:
    (jupyter_path / "secret.txt").write_text("the-secret-content")
    async with app_client(enable=["kernelspecs"]) as client:
        logo = await client.get("/kernelspecs/echo/logo-64x64.png")
        escape = await client.get("/kernelspecs/echo/%2e%2e/%2e%2e/secret.txt")
        missing = await client.get("/kernelspecs/echo/logo-svg.svg")
        no_spec = await client.get("/kernelspecs/nope/logo-64x64.png")
        unauthenticated = await client.get(
            "/kernelspecs/echo/logo-64x64.png", headers={"Authorization": ""}
        )
    assert logo.status_code == 200
    assert logo.content == PNG
    assert logo.headers["content-type"] == "image/png"
    assert escape.status_code == 404
    assert b"the-secret-content" not in escape.content
    assert missing.status_code == 404
    assert missing.json()["message"] == "Kernel spec echo has no resource logo-svg.svg"
    assert no_spec.status_code == 404
    assert unauthenticated.status_code == 403


async def test_resource_files_answer_head_with_headers_only(jupyter_path: Path) -> None:
    async with app_client(enable=["kernelspecs"]) as client:
        head = await client.head("/kernelspecs/echo/logo-64x64.png")
        missing = await client.head("/kernelspecs/nope/logo-64x64.png")
    assert head.status_code == 200
    assert head.content == b""
    assert head.headers["content-type"] == "image/png"
    assert head.headers["content-length"] == str(len(PNG))
    assert missing.status_code == 404


async def test_a_spec_installed_later_is_found_by_name_before_the_cache_expires(
    jupyter_path: Path,
) -> None:
    async with _client(
        enable=["kernelspecs"], plugins={"kernelspecs": {"cache_ttl": 3600}}
    ) as client:
        before = await client.get("/api/kernelspecs")
        _install_spec(jupyter_path, "late", display_name="Late")
        cached = await client.get("/api/kernelspecs")
        by_name = await client.get("/api/kernelspecs/late")
    assert "late" not in before.json()["kernelspecs"]
    assert "late" not in cached.json()["kernelspecs"]  # the listing is cached ...
    assert by_name.status_code == 200  # ... but a lookup by name rescans on a miss
    assert by_name.json()["spec"]["display_name"] == "Late"
