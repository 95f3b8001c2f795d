"""``FileConfigSections``: each ``/api/config`` section a JSON file, ``<dir>/<section>.json``.

JupyterLab keeps small switches there, such as whether the user opted in to news
(``jupyterlabapputilsextensionannouncements``). Writes are atomic and serialised, so two
PATCHes never lose each other's keys.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import anyio

from junction.errors import NotFound
from junction.jsonfiles import merge
from junction.plugins.lab.storage import write_atomically

__all__ = ["SECTION", "FileConfigSections"]

SECTION = re.compile(r"\w+", re.ASCII)
"""Valid section names, as Jupyter routes them."""


class FileConfigSections:
    """The config store over one directory (see the module docstring)."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self._lock = anyio.Lock()

    def _path(self, section: str) -> Path:
        if not SECTION.fullmatch(section):
            raise NotFound(f"no config section {section!r}")
        return self.directory / f"{section}.json"

    async def get(self, section: str) -> dict[str, Any]:
        """The section, ``{}`` if never written or unreadable."""
        return await anyio.to_thread.run_sync(_read, self._path(section))

    async def replace(self, section: str, data: Mapping[str, Any]) -> None:
        """Replace the section."""
        path = self._path(section)
        async with self._lock:
            await anyio.to_thread.run_sync(write_atomically, path, json.dumps(data, indent=2))

    async def update(self, section: str, patch: Mapping[str, Any]) -> dict[str, Any]:
        """Deep-merge ``patch`` (``null`` removes a key) and return the section."""
        path = self._path(section)
        async with self._lock:
            current = await anyio.to_thread.run_sync(_read, path)
            merged = merge(current, patch)
            await anyio.to_thread.run_sync(write_atomically, path, json.dumps(merged, indent=2))
        return merged


def _read(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text("utf-8"))
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}
