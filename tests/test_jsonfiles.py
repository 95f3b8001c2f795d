"""Reading admins' JSON/JSON5 objects and layering them."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

from junction.jsonfiles import merge, read_json_object


def test_read_json_object_reads_json_and_json5(tmp_path: Path) -> None:
    (tmp_path / "a.json").write_text('{"a": 1}')
    (tmp_path / "b.json5").write_text("{b: 2, // a comment\n}")
    assert read_json_object(tmp_path / "a.json", "test file") == {"a": 1}
    assert read_json_object(tmp_path / "b.json5", "test file") == {"b": 2}


def test_read_json_object_json_suffix_is_strict(tmp_path: Path) -> None:
    (tmp_path / "a.json").write_text("{a: 1}")
    assert read_json_object(tmp_path / "a.json", "test file") is None


def test_read_json_object_missing_or_empty_is_none(tmp_path: Path) -> None:
    (tmp_path / "empty.json").write_text("  \n")
    assert read_json_object(tmp_path / "missing.json", "test file") is None
    assert read_json_object(tmp_path / "empty.json", "test file") is None


@pytest.mark.parametrize("text", ["{not json", "[1, 2]", '"text"'])
def test_read_json_object_logs_and_skips_bad_files(
    tmp_path: Path, text: str, caplog: pytest.LogCaptureFixture
) -> None:
    path = tmp_path / "bad.json"
    path.write_text(text)
    with caplog.at_level(logging.WARNING, logger="junction"):
        assert read_json_object(path, "override file") is None
    assert f"ignoring override file {path}" in caplog.text


def test_merge_merges_dicts_replaces_the_rest_and_none_removes() -> None:
    target = {"a": {"x": 1, "y": 2}, "b": [1], "c": "keep", "d": "drop"}
    source = {"a": {"y": 3, "z": 4}, "b": [2], "d": None, "e": {"new": True}}
    assert merge(target, source) is target
    assert target == {"a": {"x": 1, "y": 3, "z": 4}, "b": [2], "c": "keep", "e": {"new": True}}


def test_merge_copies_values_from_the_source() -> None:
    source = {"list": [1, {"deep": 1}], "dict": {"k": [1]}}
    target: dict[str, object] = {}
    merge(target, source)
    target["list"].append(2)  # type: ignore[attr-defined]  # a list at runtime
    target["dict"]["k"].append(2)  # type: ignore[index]  # a dict at runtime
    assert source == {"list": [1, {"deep": 1}], "dict": {"k": [1]}}
