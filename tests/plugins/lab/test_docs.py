"""The examples in ``docs/jupyterlab.md`` run as written."""

from __future__ import annotations

import json
import re
import tomllib
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import pytest

from junction.plugin import Plugin, PluginContext
from junction.plugins.frontend import FRONTEND
from junction.plugins.lab import EVENTS
from junction.plugins.lab.events import MemoryEventBus

from .conftest import THEMES, Serve

pytestmark = pytest.mark.anyio

DOC = Path(__file__).parents[3] / "docs" / "jupyterlab.md"


def blocks(language: str) -> list[str]:
    """The fenced code blocks of one language in the page."""
    return re.findall(rf"```{language}\n(.*?)```", DOC.read_text(), re.S)


async def test_default_settings_example_sets_the_default_theme(serve: Serve) -> None:
    (example,) = blocks("toml")
    lab = tomllib.loads(example)["lab"]
    async with serve(lab=lab) as client:
        entry = (await client.get(f"/lab/api/settings/{THEMES}")).json()
    assert entry["schema"]["properties"]["theme"]["default"] == "JupyterLab Dark"


async def test_page_config_example_adds_keys_to_every_page(serve: Serve) -> None:
    example = next(code for code in blocks("python") if "add_page_config" in code)
    namespace: dict[str, Any] = {
        "asynccontextmanager": asynccontextmanager,
        "AsyncIterator": AsyncIterator,
        "PluginContext": PluginContext,
        "MySettings": Any,
        "Any": Any,
        "FRONTEND": FRONTEND,
    }
    exec(example, namespace)  # noqa: S102 - running our own documentation
    plugin = Plugin(
        name="docs-example",
        description="the page config example",
        lifespan=namespace["lifespan"],
        optional=[FRONTEND],
    )
    async with serve(plugins=[plugin]) as client:
        page = (await client.get("/lab", headers={"Accept": "text/html"})).text
    match = re.search(r'"application/json">(.*?)</script>', page)
    assert match
    assert json.loads(match.group(1))["exposeAppInBrowser"] is True


async def test_events_example_registers_and_emits() -> None:
    example = next(code for code in blocks("python") if "bus.emit" in code)
    bus = MemoryEventBus()

    class Context:
        def get_optional(self, key: object) -> MemoryEventBus | None:
            return bus if key == EVENTS else None

    async with bus.subscribe() as stream:
        exec(example, {"ctx": Context(), "EVENTS": EVENTS})  # noqa: S102 - our documentation
        event = stream.receive_nowait()
    assert event["schema_id"] == "https://example.org/my-plugin/v1"
    assert event["n"] == 1
