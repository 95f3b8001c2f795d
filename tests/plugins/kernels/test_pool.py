"""The pool's edges, in-process: a kernel stopped before it launched, a spec that is missing."""

from __future__ import annotations

import logging
import os
from pathlib import Path

import anyio
import pytest

from junction.plugins.kernels.connection import GOING_AWAY
from junction.plugins.kernels.kernel import ManagedKernel
from junction.plugins.kernels.service import KernelStartFailed

from .conftest import kernels_app

pytestmark = pytest.mark.anyio


async def test_a_kernel_shut_down_before_it_launched_never_launches(tmp_path: Path) -> None:
    """The pool may let a kernel go before its start began (to make room): no process."""
    async with kernels_app(tmp_path) as (_client, service):
        assert service._runtime is not None
        spec = await service.specs.find("python3")
        kernel = ManagedKernel("0b9a6f0e-4c1d-4a55-9f0e-2d7c3b1a8e11", spec, service._runtime)
        await kernel.shutdown(code=GOING_AWAY, reason="the pool made room", now=True)
        with anyio.fail_after(30), pytest.raises(KernelStartFailed, match="shut down while"):
            await kernel.start(cwd=tmp_path, env=dict(os.environ))
        assert not kernel.manager.has_kernel


async def test_a_pool_of_a_missing_spec_reports_and_waits(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.ERROR, logger="junction.kernels")
    settings = {"prespawn_count": 1, "default_kernel_name": "no-such-spec"}
    async with kernels_app(tmp_path, **settings) as (client, service):
        with anyio.fail_after(30):
            while not any("kernel pool:" in r.getMessage() for r in caplog.records):
                await anyio.sleep(0.02)
        [record] = [r for r in caplog.records if "kernel pool:" in r.getMessage()]
        assert record.getMessage() == (
            "kernel pool: a kernel failed to start (No such kernel named no-such-spec); "
            "1 failure(s) in a row, next try in 1 s"
        )
        assert len(service.pool) == 0
        # Clients asking for it get the plain answer.
        response = await client.post("/api/kernels", json={})
        assert response.status_code == 404
