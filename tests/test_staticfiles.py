"""Safe lookup, content types and cacheability of served files."""

from __future__ import annotations

from pathlib import Path

import pytest

from junction.staticfiles import content_type, is_hashed, resolve_inside


@pytest.mark.parametrize(
    ("name", "hashed"),
    [
        ("main.efd36b46f3b45eb8.js", True),
        ("1014.073326ef5d98db5e.js", True),
        ("0031b1860ea4ad75.woff", True),
        ("remoteEntry.5cbb9d2323598fbda535.js", True),
        ("style.js", False),
        ("package.json", False),
        ("index.css", False),
        ("deadbeef.js", False),  # too short to be a webpack content hash
    ],
)
def test_content_hashed_names_are_recognised(name: str, hashed: bool) -> None:
    assert is_hashed(name) is hashed


@pytest.mark.parametrize(
    "relative", ["", "..", "a/../b", "./a", "a//b", ".git/config", "a\\b", "a\x00b"]
)
def test_paths_leaving_or_hiding_are_refused(tmp_path: Path, relative: str) -> None:
    assert resolve_inside(tmp_path, relative) is None


def test_plain_paths_join_under_the_base(tmp_path: Path) -> None:
    assert resolve_inside(tmp_path, "static/a.js") == tmp_path / "static" / "a.js"


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("a.js", "application/javascript"),
        ("a.css", "text/css"),
        ("a.woff2", "font/woff2"),
        ("a.svg", "image/svg+xml"),
        ("a.unknownext", "application/octet-stream"),
    ],
)
def test_content_types_are_explicit(name: str, expected: str) -> None:
    assert content_type(Path(name)) == expected
