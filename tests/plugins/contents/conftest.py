"""Fixtures for contents tests: a root directory and a client of an app serving it."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest
from asgi_lifespan import LifespanManager

import junction.fastroutes
from junction.app import create_app
from junction.plugins.contents import CONTENTS, LocalContents
from junction.testing import TEST_TOKEN, make_settings

NO_TRASH = {"delete_to_trash": False}
"""In-process tests never use the desktop trash: it lives in the real home directory.
The trash is tested against a subprocess server with its own HOME (tests/e2e)."""


@asynccontextmanager
async def contents_client(
    root: Path, *, authenticated: bool = True, base_url: str = "/", **settings: Any
) -> AsyncIterator[Any]:
    """A client of an in-process app running contents over ``root`` with ``settings``.

    Like ``junction.testing.app_client``, whose ``plugins`` argument (inline plugins) leaves
    no way to pass the ``[contents]`` settings section.
    """
    section = {**NO_TRASH, **settings}
    app = create_app(
        make_settings(
            enable=["contents"], root_dir=root, base_url=base_url, plugins={"contents": section}
        )
    )
    headers = {"Authorization": f"token {TEST_TOKEN}"} if authenticated else {}
    async with LifespanManager(app) as manager:
        transport = httpx.ASGITransport(app=manager.app)
        async with httpx.AsyncClient(
            transport=transport, base_url="http://localhost:8888", headers=headers
        ) as client:
            client.app = app  # type: ignore[attr-defined]  # tests reach the service
            yield client


@pytest.fixture
def root(tmp_path: Path) -> Path:
    """The directory the server under test serves."""
    directory = tmp_path / "root"
    directory.mkdir()
    return directory


@pytest.fixture
def tmp_dir_fd(tmp_path: Path) -> Iterator[int]:
    """``tmp_path`` opened as a directory (for ``AtomicFile``)."""
    fd = os.open(tmp_path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        yield fd
    finally:
        os.close(fd)


@pytest.fixture
async def client(root: Path) -> AsyncIterator[Any]:
    """An authenticated client of an app running the contents plugin over ``root``."""
    async with contents_client(root) as client:
        yield client


def service(client: Any) -> LocalContents:
    """The contents service behind a client made by :func:`contents_client`."""
    contents = client.app.state.services.get(CONTENTS)
    assert isinstance(contents, LocalContents)
    return contents


@pytest.fixture(params=["twin", "fastapi"])
def fast(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> bool:
    """Whether requests are answered by the contents twins or by the FastAPI routes."""
    if request.param == "fastapi":
        monkeypatch.setattr(junction.fastroutes, "twin_of", lambda endpoint: None)
    return bool(request.param == "twin")
