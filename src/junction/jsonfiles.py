"""Admins' JSON and JSON5 files: reading one object safely, and layering objects.

Page config files, settings overrides and config sections are small JSON objects that
admins and tools write by hand, laid over each other lowest first. A bad file must never
stop the server: :func:`read_json_object` logs it and moves on.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import json5

__all__ = ["merge", "read_json_object"]

log = logging.getLogger("junction")


def read_json_object(path: Path, what: str) -> dict[str, Any] | None:
    """A JSON (or, by suffix, JSON5) object from an admin's file; None when missing or empty.

    Blocking (reads the disk). A malformed file is logged as ``ignoring <what> <path>`` and
    skipped, so one bad override never stops the server.
    """
    try:
        text = path.read_text("utf-8")
    except OSError:
        return None
    if not text.strip():
        return None
    try:
        data = json5.loads(text) if path.suffix == ".json5" else json.loads(text)
    except ValueError as exc:
        log.warning("ignoring %s %s: %s", what, path, exc)
        return None
    if not isinstance(data, dict):
        log.warning("ignoring %s %s: not a JSON object", what, path)
        return None
    return data


def merge(target: dict[str, Any], source: Mapping[str, Any]) -> dict[str, Any]:
    """Deep-merge ``source`` into ``target`` (dicts merge, anything else replaces); returns it.

    A ``None`` value removes the key, as in Jupyter's config files. Values are copied, so
    later changes to ``target`` never reach ``source``.
    """
    for key, value in source.items():
        if value is None:
            target.pop(key, None)
        elif isinstance(value, Mapping) and isinstance(target.get(key), dict):
            merge(target[key], value)
        else:
            target[key] = _copy(value)
    return target


def _copy(value: Any) -> Any:
    if isinstance(value, Mapping):
        return {key: _copy(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_copy(item) for item in value]
    return value
