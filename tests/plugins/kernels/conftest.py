"""Helpers for kernels tests: an in-process app with the kernels plugin and its settings."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import httpx
from asgi_lifespan import LifespanManager
from fastapi import FastAPI

from junction.app import create_app
from junction.plugins.kernels.manager import JupyterClientKernels
from junction.plugins.kernels.service import KERNELS
from junction.testing import TEST_TOKEN, make_settings


@asynccontextmanager
async def kernels_app(
    root_dir: Path, **kernels_settings: Any
) -> AsyncIterator[tuple[httpx.AsyncClient, JupyterClientKernels]]:
    """An authenticated client of an app running kernelspecs and kernels, and the service."""
    settings = make_settings(
        enable=["kernelspecs", "kernels"],
        root_dir=root_dir,
        plugins={"kernels": kernels_settings},
    )
    app: FastAPI = create_app(settings)
    async with LifespanManager(app) as manager:
        transport = httpx.ASGITransport(app=manager.app)
        headers = {"Authorization": f"token {TEST_TOKEN}"}
        async with httpx.AsyncClient(
            transport=transport, base_url="http://localhost:8888", headers=headers
        ) as client:
            service = app.state.services.get(KERNELS)
            assert isinstance(service, JupyterClientKernels)
            yield client, service
