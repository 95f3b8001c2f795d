"""Fixtures for real-client tests: a real ``junction`` server with the gateway profile."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from junction.testing import ServerProcess


@pytest.fixture
def junction_gateway(tmp_path: Path) -> Iterator[ServerProcess]:
    """``junction --profile gateway`` (kernelspecs, kernels, sessions) on a free port."""
    root = tmp_path / "root"
    root.mkdir()
    server = ServerProcess(
        ["--profile", "gateway", "--port", "0", "--root-dir", str(root)],
        log_path=tmp_path / "junction.log",
    )
    server.start()
    try:
        yield server
    finally:
        server.stop()
