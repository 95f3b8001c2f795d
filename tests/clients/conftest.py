"""Fixtures for real-client tests: a real ``junction`` server with the gateway profile."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from junction.testing import ServerProcess

from .node_client import ensure_node_project


@pytest.fixture
def gateway_env() -> dict[str, str]:
    """Extra environment for the Junction process; modules override it."""
    return {}


@pytest.fixture
def gateway_args() -> list[str]:
    """Extra command-line arguments for the Junction process; modules override it."""
    return []


@pytest.fixture
def junction_gateway(
    tmp_path: Path,
    gateway_env: dict[str, str],
    gateway_args: list[str],
    monkeypatch: pytest.MonkeyPatch,
) -> Iterator[ServerProcess]:
    """``junction --profile gateway`` (kernelspecs, kernels, sessions) on a free port."""
    for name, value in gateway_env.items():
        monkeypatch.setenv(name, value)  # ServerProcess passes os.environ on
    root = tmp_path / "root"
    root.mkdir()
    server = ServerProcess(
        ["--profile", "gateway", "--port", "0", "--root-dir", str(root), *gateway_args],
        log_path=tmp_path / "junction.log",
    )
    server.start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="module")
def node() -> str:
    """The node binary, with the ``@jupyterlab/services`` client project installed."""
    return ensure_node_project()
