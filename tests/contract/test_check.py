"""The registry refuses a plugin whose routes its spec files do not all describe."""

from __future__ import annotations

from importlib.metadata import EntryPoint
from pathlib import Path

import pytest

from junction.errors import PluginGraphError
from junction.registry import ENTRY_POINT_GROUP, compose, discover
from junction.spec.contract import route_keys

PLUGIN_SOURCE = '''
from fastapi import APIRouter, WebSocket

from junction.plugin import Plugin

router = APIRouter()


@router.get("/api/demo")
async def list_demo() -> list[str]:
    """Every demo."""
    return []


@router.delete("/api/demo/{path:path}", status_code=204)
async def delete_demo(path: str) -> None:
    """Delete one demo."""


@router.websocket("/api/demo/{name}/feed")
async def demo_feed(websocket: WebSocket, name: str) -> None:
    """The demo feed."""


plugin = Plugin(name="PLUGIN_NAME", description="A demo plugin.", routers=[router])
'''

OPENAPI = """\
openapi: 3.1.0
info:
  title: demo
  version: '1'
paths:
  /api/demo:
    get:
      responses:
        '200':
          description: Every demo.
  /api/demo/{path}:
    delete:
      responses:
        '204':
          description: Deleted.
"""

ASYNCAPI = """\
asyncapi: 3.0.0
info:
  title: demo
  version: '1'
channels:
  feed:
    address: /api/demo/{name}/feed
"""


def make_plugin(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, name: str) -> Path:
    """An installed-looking plugin package ``<name>_pkg`` in ``tmp_path``; returns its dir."""
    package = tmp_path / f"{name}_pkg"
    package.mkdir()
    (package / "__init__.py").write_text(PLUGIN_SOURCE.replace("PLUGIN_NAME", name))
    monkeypatch.syspath_prepend(str(tmp_path))
    return package


def available(name: str) -> dict[str, EntryPoint]:
    """The installed plugins plus the demo one, as entry points."""
    entry = EntryPoint(name=name, value=f"{name}_pkg:plugin", group=ENTRY_POINT_GROUP)
    return {**discover(), name: entry}


def test_check_passes_a_fully_described_plugin(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    package = make_plugin(tmp_path, monkeypatch, "demo_ok")
    (package / "openapi.yaml").write_text(OPENAPI)
    (package / "asyncapi.yaml").write_text(ASYNCAPI)
    composition = compose(["demo_ok"], available=available("demo_ok"))
    assert [p.name for p in composition.order] == ["demo_ok"]
    assert composition.contracts["demo_ok"].directory == package


def test_check_refuses_an_undescribed_route_naming_plugin_route_file_and_fix(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    package = make_plugin(tmp_path, monkeypatch, "demo_http")
    (package / "openapi.yaml").write_text(OPENAPI.replace("    delete:", "    put:"))
    (package / "asyncapi.yaml").write_text(ASYNCAPI)
    with pytest.raises(PluginGraphError) as caught:
        compose(["demo_http"], available=available("demo_http"))
    message = str(caught.value)
    assert message.startswith("plugin demo_http: DELETE /api/demo/{path} is not described in ")
    assert str(package / "openapi.yaml") in message or "demo_http_pkg/openapi.yaml" in message
    assert "run `python -m junction.spec write demo_http` and review the diff" in message


def test_check_refuses_an_undescribed_websocket(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    package = make_plugin(tmp_path, monkeypatch, "demo_ws")
    (package / "openapi.yaml").write_text(OPENAPI)
    expected = r"plugin demo_ws: WebSocket /api/demo/\{name\}/feed is not described"
    with pytest.raises(PluginGraphError, match=expected):
        compose(["demo_ws"], available=available("demo_ws"))


def test_check_refuses_a_plugin_without_spec_files_and_counts_the_rest(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    make_plugin(tmp_path, monkeypatch, "demo_bare")
    with pytest.raises(PluginGraphError) as caught:
        compose(["demo_bare"], available=available("demo_bare"))
    assert "plugin demo_bare: GET /api/demo is not described" in str(caught.value)
    assert "(and 2 more undescribed routes)" in str(caught.value)


def test_check_reports_broken_yaml(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    package = make_plugin(tmp_path, monkeypatch, "demo_yaml")
    (package / "openapi.yaml").write_text("paths: {/api/demo: [\n")
    with pytest.raises(PluginGraphError, match="is not valid YAML"):
        compose(["demo_yaml"], available=available("demo_yaml"))


def test_check_ignores_ready_made_plugins_of_tests() -> None:
    from fastapi import APIRouter

    from junction.plugin import Plugin

    router = APIRouter()

    @router.get("/api/inline")
    async def inline() -> dict[str, str]:
        return {}

    composition = compose([], extra=[Plugin(name="inline", description="x", routers=[router])])
    assert [p.name for p in composition.order] == ["inline"]
    assert composition.contracts == {}


def test_every_installed_plugin_describes_every_route() -> None:
    # The same check as startup's, over every installed plugin at once (and the core).
    from junction.spec.__main__ import main

    assert main(["check"]) == 0


def test_route_keys_use_openapi_paths() -> None:
    from junction.plugins.contents import plugin

    keys = route_keys(plugin.routers)
    assert ("GET", "/api/contents/{path}") in keys
    assert all(":" not in path for _, path in keys)


def test_check_message_shows_a_readable_path(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Inside the working directory the file is named relative to it.
    package = make_plugin(tmp_path, monkeypatch, "demo_rel")
    monkeypatch.chdir(tmp_path)
    with pytest.raises(PluginGraphError) as caught:
        compose(["demo_rel"], available=available("demo_rel"))
    assert f" in {package.name}/openapi.yaml " in str(caught.value)
