"""The plugin itself: what it adds to the JupyterLab page config when the frontend runs."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest

from junction.plugins.contents import plugin
from junction.plugins.frontend import FRONTEND
from junction.registry import resolve
from junction.testing import app_client

from .conftest import NO_TRASH

pytestmark = pytest.mark.anyio

CONFIG_DATA = re.compile(
    r'<script id="jupyter-config-data" type="application/json">(.*?)</script>', re.S
)


@pytest.fixture(autouse=True)
def jupyter_config_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """No page config files of the machine's Jupyter config dir leak into the page."""
    path = tmp_path / "jupyter-config"
    path.mkdir()
    monkeypatch.setenv("JUPYTER_CONFIG_DIR", str(path))


async def _page_config(root: Path, **contents: Any) -> dict[str, Any]:
    async with app_client(
        enable=["contents", "frontend"], root_dir=root, plugin_settings={"contents": contents}
    ) as client:
        response = await client.get("/lab", headers={"Accept": "text/html"})
    assert response.status_code == 200
    match = CONFIG_DATA.search(response.text)
    assert match is not None
    config: dict[str, Any] = json.loads(match.group(1))
    return config


@pytest.mark.parametrize(
    ("allow_hidden", "delete_to_trash"), [(True, True), (False, False), (True, False)]
)
async def test_the_page_config_carries_the_contents_settings(
    root: Path, allow_hidden: bool, delete_to_trash: bool
) -> None:
    config = await _page_config(root, allow_hidden=allow_hidden, delete_to_trash=delete_to_trash)
    assert config["allow_hidden_files"] is allow_hidden
    assert config["delete_to_trash"] is delete_to_trash


async def test_the_page_config_says_deletes_are_final_without_send2trash(
    root: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("junction.plugins.contents.find_trash", lambda: None)
    config = await _page_config(root, delete_to_trash=True)
    assert config["delete_to_trash"] is False  # what deleting really does


def test_the_frontend_is_optional_and_starts_first() -> None:
    assert FRONTEND in plugin.optional
    assert [p.name for p in resolve([plugin]).order] == ["contents"]
    from junction.plugins.frontend import plugin as frontend

    assert [p.name for p in resolve([plugin, frontend]).order] == ["frontend", "contents"]


async def test_without_a_way_to_name_open_files_the_server_warns_and_still_works(
    root: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setattr("junction.plugins.contents.paths.find_fd_path", lambda: None)
    async with app_client(
        enable=["contents"], root_dir=root, plugin_settings={"contents": NO_TRASH}
    ) as client:
        text = {"type": "file", "format": "text", "content": "x"}
        assert (await client.put("/api/contents/a.txt", json=text)).status_code == 201
        assert (await client.get("/api/contents/a.txt")).json()["content"] == "x"
    assert "cannot name open files" in caplog.text
