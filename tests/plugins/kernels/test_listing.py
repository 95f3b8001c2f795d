"""``list_kernels`` and ``list_sessions``: on by default (to authenticated callers only),
off when configured."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from junction.testing import app_client

pytestmark = pytest.mark.anyio

OFF = {"kernels": {"list_kernels": False}, "sessions": {"list_sessions": False}}


async def test_listing_off_refuses_kernels_and_sessions_lists(tmp_path: Path) -> None:
    async with app_client(profile="gateway", root_dir=tmp_path, plugin_settings=OFF) as client:
        kernels = await client.get("/api/kernels")
        sessions = await client.get("/api/sessions")
        assert (await client.get("/api/kernelspecs")).status_code == 200
    assert kernels.status_code == 403
    assert kernels.json() == {
        "message": "Listing kernels is turned off on this server (kernels.list_kernels = false); "
        "ask for a kernel by its id",
        "reason": "Forbidden",
    }
    assert sessions.status_code == 403
    assert sessions.json()["message"].startswith(
        "Listing sessions is turned off on this server (sessions.list_sessions = false)"
    )


@pytest.mark.parametrize(
    ("profile", "settings"),
    [("kernels", {}), ("gateway", {}), ("full", {})],
)
async def test_listing_is_on_by_default_in_every_profile(
    tmp_path: Path, profile: str, settings: dict[str, Any]
) -> None:
    # The gateway profile lists too: jupyter_server's GatewayClient needs it for the front
    # server's /api/status and /api/kernels.
    async with app_client(profile=profile, root_dir=tmp_path, plugin_settings=settings) as client:
        kernels = await client.get("/api/kernels")
        sessions = await client.get("/api/sessions")
    assert (kernels.status_code, kernels.json()) == (200, [])
    assert (sessions.status_code, sessions.json()) == (200, [])


async def test_listing_needs_the_token(tmp_path: Path) -> None:
    async with app_client(profile="gateway", root_dir=tmp_path, authenticated=False) as client:
        for what in ("kernels", "sessions"):
            response = await client.get(f"/api/{what}")
            assert response.status_code == 403
            assert response.json()["message"] == "Invalid or missing authentication token"
