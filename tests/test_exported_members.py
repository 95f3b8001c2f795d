"""The public API: everything in ``junction.__all__`` exists, and nothing public is missing."""

from __future__ import annotations

import junction


def test_all_names_exist() -> None:
    for name in junction.__all__:
        assert hasattr(junction, name), name


def test_every_public_attribute_is_exported() -> None:
    public = {
        name
        for name, value in vars(junction).items()
        if not name.startswith("_") and getattr(value, "__module__", "").startswith("junction")
    }
    assert public <= set(junction.__all__)
