"""Fixtures of the users plugin's tests: a multi-user app on a real database."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from typing import Any

import httpx
import pytest

from junction.testing import app_client

MultiUser = Callable[..., AbstractAsyncContextManager[httpx.AsyncClient]]


@pytest.fixture
def multiuser(database_url: str) -> MultiUser:
    """Open an in-process multi-user app (``users`` plus ``extra`` plugins) on SQLite and on
    PostgreSQL; the client carries the server token, which stands for an administrator."""

    @asynccontextmanager
    async def open_app(
        *enable: str, users: dict[str, Any] | None = None, **overrides: Any
    ) -> AsyncIterator[httpx.AsyncClient]:
        async with app_client(
            enable=["users", *enable],
            database_url=database_url,
            plugin_settings={"users": users or {}},
            **overrides,
        ) as client:
            yield client

    return open_app
