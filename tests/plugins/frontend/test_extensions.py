"""Discovering prebuilt extensions on the labextensions path."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

from junction.plugins.frontend.extensions import read_extension, scan_extensions

from .conftest import EXTENSION_ENTRY, write_extension


def test_scoped_and_plain_extensions_are_found_sorted(labextensions: Path) -> None:
    found = scan_extensions([labextensions])
    assert [ext.name for ext in found] == ["@acme/hello", "plain-ext"]
    hello = found[0]
    assert hello.load == EXTENSION_ENTRY
    assert hello.version == "1.2.3"
    assert hello.url == "https://example.org/@acme/hello"
    assert hello.install == {"packageManager": "python", "packageName": "@acme-hello"}
    assert found[1].disabled_extensions == ("@jupyterlab/foo-extension:bar",)


def test_first_directory_on_the_path_wins(tmp_path: Path) -> None:
    write_extension(tmp_path / "user", "dup", version="2.0.0")
    write_extension(tmp_path / "system", "dup", version="1.0.0")
    found = scan_extensions([tmp_path / "user", tmp_path / "system", tmp_path / "missing"])
    assert [(ext.name, ext.version) for ext in found] == [("dup", "2.0.0")]


def test_broken_or_source_extensions_are_skipped_with_a_warning(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    broken = tmp_path / "exts" / "broken"
    broken.mkdir(parents=True)
    (broken / "package.json").write_text("{not json")
    source = tmp_path / "exts" / "source-only"
    source.mkdir()
    (source / "package.json").write_text('{"name": "source-only", "jupyterlab": {}}')
    with caplog.at_level(logging.WARNING, logger="junction.frontend"):
        assert scan_extensions([tmp_path / "exts"]) == []
    assert "broken" in caplog.text
    assert "not a prebuilt JupyterLab extension" in caplog.text


def test_page_config_entry_has_only_declared_entry_points(tmp_path: Path) -> None:
    directory = write_extension(tmp_path, "mime-only")
    extension = read_extension(directory)
    assert extension is not None
    entry = extension.page_config_entry()
    assert entry["name"] == "mime-only"
    assert "mimeExtension" not in entry
    assert entry["entrypoints"] is None
