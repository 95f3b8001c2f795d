"""The seed notebook: reading it, which cells run, which kernels get it, bad settings."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from junction import ConfigError
from junction.plugins.kernels import plugin
from junction.plugins.kernels.seeding import SeedCell, SeedNotebook, seed_path


def _notebook(cells: list[dict[str, Any]], **metadata: Any) -> dict[str, Any]:
    return {"nbformat": 4, "nbformat_minor": 5, "metadata": metadata, "cells": cells}


def _code(source: str | list[str]) -> dict[str, Any]:
    return {"cell_type": "code", "metadata": {}, "source": source, "outputs": []}


def test_code_cells_run_in_order_numbered_as_the_notebook_shows_them() -> None:
    data = _notebook(
        [
            {"cell_type": "markdown", "metadata": {}, "source": "# setup"},
            _code(["import os\n", "SEEDED = 42\n"]),
            _code("   \n"),
            {"cell_type": "raw", "metadata": {}, "source": "x = 1"},
            _code("print(SEEDED)"),
        ],
        kernelspec={"name": "python3", "language": "Python", "display_name": "Python 3"},
    )
    seed = SeedNotebook.parse("seed.ipynb", data)
    assert seed.cells == (SeedCell(2, "import os\nSEEDED = 42\n"), SeedCell(5, "print(SEEDED)"))
    assert seed.language == "python"


@pytest.mark.parametrize(
    ("metadata", "language", "seeded"),
    [
        ({"kernelspec": {"language": "python"}}, "python", True),
        ({"kernelspec": {"language": "python"}}, "R", False),
        ({"language_info": {"name": "R"}}, "r", True),
        ({"kernelspec": {"name": "ir"}, "language_info": {"name": "R"}}, "python", False),
        ({}, "R", True),
        ({}, None, True),
        ({"kernelspec": {"language": "python"}}, None, False),
    ],
)
def test_kernels_of_the_notebooks_language_are_seeded(
    metadata: dict[str, Any], language: str | None, seeded: bool
) -> None:
    seed = SeedNotebook.parse("seed.ipynb", _notebook([_code("x = 1")], **metadata))
    assert seed.applies_to(language) is seeded


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"nbformat": 3, "worksheets": []}, "is not a version 4 Jupyter notebook"),
        ([1, 2], "is not a version 4 Jupyter notebook"),
        ({"nbformat": 4, "cells": {}}, "has no list of cells"),
        (_notebook([_code(["a", "b"]), {"cell_type": "code", "source": 7}]), "cell 2 of"),
    ],
)
def test_what_is_not_a_notebook_is_refused(data: Any, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        SeedNotebook.parse("seed.ipynb", data)


def test_paths_and_file_uris_name_local_files(tmp_path: Path) -> None:
    assert seed_path("seed.ipynb", tmp_path) == tmp_path / "seed.ipynb"
    assert seed_path("/srv/seed.ipynb", tmp_path) == Path("/srv/seed.ipynb")
    assert seed_path("file:///srv/my%20seed.ipynb", tmp_path) == Path("/srv/my seed.ipynb")
    assert seed_path("file://localhost/srv/seed.ipynb", tmp_path) == Path("/srv/seed.ipynb")
    with pytest.raises(ConfigError, match="names another host"):
        seed_path("file://elsewhere/srv/seed.ipynb", tmp_path)


def test_settings_read_the_notebook_so_a_bad_one_stops_the_server_first(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "seed.ipynb").write_text(json.dumps(_notebook([_code("x = 1")])))
    (tmp_path / "broken.ipynb").write_text("{not json")
    loaded = plugin.load_settings({"seed_uri": "seed.ipynb"})
    assert loaded.model_dump()["seed_uri"] == "seed.ipynb"
    uri = (tmp_path / "seed.ipynb").as_uri()
    assert plugin.load_settings({"seed_uri": uri}).model_dump()["seed_uri"] == uri
    assert plugin.load_settings({"seed_uri": ""}).model_dump()["seed_uri"] is None
    for value, message in [
        ("missing.ipynb", r"cannot read the notebook .*missing\.ipynb: \[Errno 2\]"),
        ("broken.ipynb", r"cannot read the notebook .*broken\.ipynb"),
        ("https://example.org/seed.ipynb", "must be a local path or a file:// URI"),
    ]:
        with pytest.raises(ConfigError, match=message):
            plugin.load_settings({"seed_uri": value})


def test_an_empty_forced_name_forces_nothing() -> None:
    assert plugin.load_settings({"force_kernel_name": ""}).model_dump()["force_kernel_name"] is None
