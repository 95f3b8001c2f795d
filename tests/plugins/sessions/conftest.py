"""Fixtures for session tests: a fake kernels service and a client of an app using it."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from junction.testing import app_client

from .fakes import FakeKernels, fake_kernels_plugin


@pytest.fixture
def kernels() -> FakeKernels:
    """The fake kernels service the app under test uses."""
    return FakeKernels()


@pytest.fixture
async def client(kernels: FakeKernels, tmp_path: Path) -> AsyncIterator[Any]:
    """An authenticated client of an app running sessions over the fake kernels."""
    async with app_client(
        plugins=[fake_kernels_plugin(kernels)], enable=["sessions"], root_dir=tmp_path
    ) as client:
        yield client
