"""Routes of the core: ``/api`` with and without the trailing slash."""

from __future__ import annotations

import pytest

from junction import __version__
from junction.testing import app_client

pytestmark = pytest.mark.anyio


async def test_api_with_a_trailing_slash_answers_like_api() -> None:
    async with app_client() as client:
        plain = await client.get("/api")
        slash = await client.get("/api/")
    assert (slash.status_code, slash.json()) == (200, {"version": __version__})
    assert slash.json() == plain.json()


async def test_api_with_a_trailing_slash_needs_a_credential() -> None:
    async with app_client(authenticated=False) as client:
        response = await client.get("/api/")
    assert response.status_code == 403
