"""Terminal limits in-process, over real PTYs: the server-wide cap, bad ``cwd`` values."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from junction.testing import app_client

from .conftest import SHELL

pytestmark = pytest.mark.anyio


def _client(root: Path, **settings: Any) -> Any:
    return app_client(
        enable=["terminals"],
        root_dir=root,
        plugin_settings={"terminals": {"shell_command": SHELL, **settings}},
    )


async def test_a_terminal_past_max_terminals_gets_403(tmp_path: Path) -> None:
    async with _client(tmp_path, max_terminals=2) as client:
        for _ in range(2):
            assert (await client.post("/api/terminals")).status_code == 200
        refused = await client.post("/api/terminals")
        assert refused.status_code == 403
        assert refused.json()["reason"] == "Resource Limit"
        assert "terminals.max_terminals" in refused.json()["message"]
        assert len((await client.get("/api/terminals")).json()) == 2
        assert (await client.delete("/api/terminals/1")).status_code == 204
        assert (await client.post("/api/terminals")).status_code == 200


async def test_the_default_cap_is_bounded(tmp_path: Path) -> None:
    from junction.plugins.terminals.settings import TerminalsSettings

    limit = TerminalsSettings().max_terminals
    assert limit is not None
    assert limit <= 1024
    assert TerminalsSettings().max_message_size == 1 << 20


@pytest.mark.parametrize("cwd", ["a\0b", "/\0", "\0"])
async def test_a_nul_byte_in_cwd_is_a_400(tmp_path: Path, cwd: str) -> None:
    async with _client(tmp_path) as client:
        response = await client.post("/api/terminals", json={"cwd": cwd})
        assert response.status_code == 400, response.text
        assert response.json()["reason"] == "No such directory"
        assert "NUL" in response.json()["message"]
        assert (await client.get("/api/terminals")).json() == []
