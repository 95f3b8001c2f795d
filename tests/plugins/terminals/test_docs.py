"""docs/terminals.md: its configuration example is valid and documents every setting."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

from junction.plugins.terminals import plugin
from junction.plugins.terminals.settings import TerminalsSettings

DOC = Path(__file__).parents[3] / "docs" / "terminals.md"


def test_the_settings_example_loads_and_every_setting_is_documented() -> None:
    text = DOC.read_text()
    [example] = re.findall(r"```toml\n(.*?)```", text, flags=re.DOTALL)
    settings = plugin.load_settings(tomllib.loads(example)["terminals"]).model_dump()
    assert settings == TerminalsSettings().model_dump()  # the example shows the defaults
    for name in TerminalsSettings.model_fields:
        assert f"| `{name}` |" in text, f"terminals.{name} is missing from docs/terminals.md"
