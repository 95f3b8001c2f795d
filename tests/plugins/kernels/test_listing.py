"""``list_kernels`` and ``list_sessions``: off in the gateway profile, on elsewhere."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from junction.testing import app_client

pytestmark = pytest.mark.anyio


async def test_the_gateway_profile_does_not_list_kernels_or_sessions(tmp_path: Path) -> None:
    async with app_client(profile="gateway", root_dir=tmp_path) as client:
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
    [
        ("kernels", {}),
        ("gateway", {"kernels": {"list_kernels": True}, "sessions": {"list_sessions": True}}),
    ],
)
async def test_listing_is_on_in_the_kernels_profile_and_when_configured(
    tmp_path: Path, profile: str, settings: dict[str, Any]
) -> None:
    async with app_client(profile=profile, root_dir=tmp_path, plugin_settings=settings) as client:
        kernels = await client.get("/api/kernels")
        sessions = await client.get("/api/sessions")
    assert (kernels.status_code, kernels.json()) == (200, [])
    assert (sessions.status_code, sessions.json()) == (200, [])
