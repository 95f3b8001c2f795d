"""docs/apps.md: its settings example is valid and every setting is documented."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

from junction.plugins.apps import plugin
from junction.plugins.apps.presets import PRESETS
from junction.plugins.apps.settings import AppsSettings

DOC = Path(__file__).parents[3] / "docs" / "apps.md"


def test_the_settings_example_loads_and_every_setting_is_documented() -> None:
    text = DOC.read_text()
    examples = re.findall(r"```toml\n(.*?)```", text, flags=re.DOTALL)
    defaults = tomllib.loads(examples[-1])["apps"]
    assert plugin.load_settings(defaults).model_dump() == AppsSettings().model_dump()
    predefined = tomllib.loads(examples[0])["apps"]
    assert plugin.load_settings(predefined).model_dump()["predefined"][0]["id"] == "sales"
    for name in AppsSettings.model_fields:
        assert f"| `{name}` |" in text, f"apps.{name} is missing from docs/apps.md"


def test_every_preset_is_documented_and_uses_the_port() -> None:
    text = DOC.read_text()
    for name, preset in PRESETS.items():
        assert f"| {name} |" in text, f"preset {name} is missing from docs/apps.md"
        templates = [*preset.command, *preset.env.values()]
        assert any("{port}" in part for part in templates), name
