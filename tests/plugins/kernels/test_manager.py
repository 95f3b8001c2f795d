"""Decisions the kernels service makes without a kernel: culling, environment policy."""

from __future__ import annotations

from typing import Any

import pytest

from junction.errors import BadRequest
from junction.plugins.kernels.manager import check_env, should_cull
from junction.plugins.kernels.settings import KernelsSettings


def _settings(**values: Any) -> KernelsSettings:
    return KernelsSettings.model_validate({"cull_idle_timeout": 60, **values})


@pytest.mark.parametrize(
    ("settings", "state", "expected"),
    [
        ({}, {}, True),
        ({"cull_idle_timeout": 0}, {}, False),
        ({}, {"idle": 59}, False),
        ({}, {"phase": "restarting"}, False),
        ({}, {"connections": 1}, False),
        ({"cull_connected": True}, {"connections": 1}, True),
        ({}, {"execution_state": "busy"}, False),
        ({"cull_busy": True}, {"execution_state": "busy"}, True),
    ],
    ids=[
        "idle",
        "culling-off",
        "recently-active",
        "restarting",
        "connected",
        "connected-culled",
        "busy",
        "busy-culled",
    ],
)
def test_should_cull(settings: dict[str, Any], state: dict[str, Any], expected: bool) -> None:
    facts: dict[str, Any] = {
        "phase": "running",
        "idle": 61.0,
        "connections": 0,
        "execution_state": "idle",
        **state,
    }
    assert should_cull(_settings(**settings), **facts) is expected


def test_env_allowlist_takes_shell_patterns() -> None:
    check_env({"KERNEL_USERNAME": "ana", "LANG": "C"}, ["KERNEL_*", "LANG"])
    check_env(None, [])
    with pytest.raises(BadRequest, match="PATH may not be set"):
        check_env({"KERNEL_X": "1", "PATH": "/evil"}, ["KERNEL_*", "LANG"])
    with pytest.raises(BadRequest, match="allows: none"):
        check_env({"KERNEL_X": "1"}, [])
