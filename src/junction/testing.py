"""Helpers for testing Junction and its plugins in-process.

``app_client`` runs the whole app (lifespans included) behind an ``httpx.AsyncClient`` that
carries the token, so a test reads as a client session::

    async with app_client(root_dir=tmp_path, enable=["contents"]) as client:
        response = await client.get("/api/contents")
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from typing import Any

from junction.app import create_app
from junction.plugin import Plugin
from junction.settings import ServerSettings

__all__ = ["TEST_TOKEN", "app_client", "make_settings"]

TEST_TOKEN = "junction-test-token"  # noqa: S105 - a fixture, not a secret


def make_settings(**overrides: Any) -> ServerSettings:
    """Settings for tests: a fixed token and cookie secret, no browser, no plugins by default."""
    values: dict[str, Any] = {
        "token": TEST_TOKEN,
        "cookie_secret": "junction-test-cookie-secret",
        "open_browser": False,
        "profile": "none",
    }
    values.update(overrides)
    return ServerSettings.model_validate(values)


@asynccontextmanager
async def app_client(
    *, plugins: Sequence[Plugin] = (), authenticated: bool = True, **overrides: Any
) -> AsyncIterator[Any]:
    """An ``httpx.AsyncClient`` talking to a running in-process app built from ``overrides``.

    Requires the ``dev`` extra (httpx, asgi-lifespan).
    """
    import httpx
    from asgi_lifespan import LifespanManager

    app = create_app(make_settings(**overrides), plugins=plugins)
    headers = {"Authorization": f"token {TEST_TOKEN}"} if authenticated else {}
    async with LifespanManager(app) as manager:
        transport = httpx.ASGITransport(app=manager.app)
        async with httpx.AsyncClient(
            transport=transport, base_url="http://localhost:8888", headers=headers
        ) as client:
            client.app = app  # type: ignore[attr-defined]  # handy for tests reaching services
            yield client
