"""Finding the JupyterLab application directory and the labextensions path."""

from __future__ import annotations

import json
from importlib.metadata import version
from pathlib import Path

import pytest

from junction.errors import ConfigError
from junction.plugins.frontend.appdir import (
    app_dir_candidates,
    find_app_dir,
    labextensions_path,
    load_layout,
)


def make_app_dir(path: Path, package: dict[str, object] | None = None) -> Path:
    """A minimal app dir: ``static/index.html`` and optionally ``static/package.json``."""
    (path / "static").mkdir(parents=True)
    (path / "static" / "index.html").write_text("<html></html>")
    if package is not None:
        (path / "static" / "package.json").write_text(json.dumps(package))
    return path


def test_configured_app_dir_is_the_only_candidate(tmp_path: Path) -> None:
    app = make_app_dir(tmp_path / "lab")
    assert app_dir_candidates(app) == [app]
    assert find_app_dir(app) == app.resolve()


def test_jupyterlab_dir_environment_variable_is_honoured(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    app = make_app_dir(tmp_path / "elsewhere")
    monkeypatch.setenv("JUPYTERLAB_DIR", str(app))
    assert find_app_dir(None) == app.resolve()


def test_installed_jupyterlab_is_found_by_default() -> None:
    found = find_app_dir(None)
    assert (found / "static" / "index.html").is_file()
    assert (found / "schemas").is_dir()


def test_missing_app_dir_names_the_places_and_the_fix(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as raised:
        find_app_dir(tmp_path / "empty")
    message = str(raised.value)
    assert str(tmp_path / "empty") in message
    assert "pip install" in message
    assert "frontend.app_dir" in message


def test_layout_reads_name_and_version_from_the_bundle(tmp_path: Path) -> None:
    app = make_app_dir(
        tmp_path / "lab", {"name": "top", "jupyterlab": {"name": "MyLab", "version": "9.8.7"}}
    )
    layout = load_layout(app)
    assert (layout.app_name, layout.app_version) == ("MyLab", "9.8.7")
    assert layout.static_dir == app / "static"
    assert layout.schemas_dir == app / "schemas"
    assert layout.themes_dir == app / "themes"
    assert layout.settings_dir == app / "settings"


def test_layout_falls_back_to_the_installed_version(tmp_path: Path) -> None:
    layout = load_layout(make_app_dir(tmp_path / "lab"))
    assert layout.app_name == "JupyterLab"
    assert layout.app_version == version("jupyterlab")


def test_labextensions_path_puts_extra_dirs_first_once(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("JUPYTER_PATH", str(tmp_path / "jp"))
    extra = tmp_path / "extra"
    path = labextensions_path([extra, extra])
    assert path[0] == extra
    assert path.count(extra) == 1
    assert tmp_path / "jp" / "labextensions" in path
