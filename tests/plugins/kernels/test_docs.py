"""docs/kernels.md: its configuration example is valid for the plugins it documents."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

from junction.plugins.kernels import plugin as kernels
from junction.plugins.kernels.settings import KernelsSettings
from junction.plugins.kernelspecs import plugin as kernelspecs

DOC = Path(__file__).parents[3] / "docs" / "kernels.md"


def test_the_settings_example_loads_and_every_setting_is_documented() -> None:
    text = DOC.read_text()
    [example] = re.findall(r"```toml\n(.*?)```", text, flags=re.DOTALL)
    config = tomllib.loads(example)
    assert kernels.load_settings(config["kernels"]).model_dump()["max_kernels"] == 20
    assert kernelspecs.load_settings(config["kernelspecs"]).model_dump() == {"cache_ttl": 10}
    for name in KernelsSettings.model_fields:
        assert f"| `{name}` |" in text, f"kernels.{name} is missing from docs/kernels.md"
