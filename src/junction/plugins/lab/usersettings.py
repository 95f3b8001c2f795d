"""``FileSettingsStore``: user settings as JSON5 files, validated against plugin schemas.

Layout: ``<dir>/<package>/<plugin>.jupyterlab-settings`` (``<package>`` may be
``@scope/name``), holding exactly the text the user saved, comments included. This is the
layout JupyterLab users know, so settings can be copied in and out by hand.
"""

from __future__ import annotations

import logging
import re
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import anyio
import json5
from jsonschema.exceptions import ValidationError

from junction.plugins.frontend.service import FrontendService
from junction.plugins.lab.models import SettingEntry
from junction.plugins.lab.schemas import PluginSchema, SchemaCatalog
from junction.plugins.lab.service import InvalidSettings, SettingsNotFound
from junction.plugins.lab.storage import write_atomically
from junction.services import isoformat

__all__ = ["SETTINGS_SUFFIX", "FileSettingsStore", "settings_path"]

SETTINGS_SUFFIX = ".jupyterlab-settings"

log = logging.getLogger("junction.lab")

_PLUGIN_ID = re.compile(r"(@[\w.-]+/)?[\w.-]+:[\w.-]+")


def settings_path(directory: Path, plugin_id: str) -> Path:
    """Where a plugin's user settings live; :class:`SettingsNotFound` for a malformed id."""
    if not _PLUGIN_ID.fullmatch(plugin_id):
        raise SettingsNotFound(f"no settings for {plugin_id!r}")
    package, _, plugin = plugin_id.partition(":")
    parts = [*package.split("/"), plugin + SETTINGS_SUFFIX]
    if any(part in (".", "..") or part.startswith(".") for part in parts):
        raise SettingsNotFound(f"no settings for {plugin_id!r}")
    return directory.joinpath(*parts)


class FileSettingsStore:
    """The settings store over a directory of JSON5 files (see the module docstring)."""

    def __init__(self, catalog: SchemaCatalog, directory: Path, frontend: FrontendService) -> None:
        self.catalog = catalog
        self.directory = directory
        self.frontend = frontend

    async def ids(self) -> list[str]:
        """Every plugin id with a schema, sorted."""
        located = await self._locate()
        return sorted(located)

    async def list(self) -> list[SettingEntry]:
        """Every plugin's settings (schemas that fail to load are logged and left out)."""
        located = await self._locate()

        def read_all() -> list[SettingEntry]:
            entries = []
            for plugin_id in sorted(located):
                try:
                    schema = self.catalog.load(plugin_id, located[plugin_id])
                except (OSError, ValueError) as exc:
                    _log_bad_schema(plugin_id, exc)
                    continue
                entries.append(self._entry(schema))
            return entries

        return await anyio.to_thread.run_sync(read_all)

    async def get(self, plugin_id: str) -> SettingEntry:
        """One plugin's settings. Raises :class:`SettingsNotFound`."""
        schema = await self._schema(plugin_id)
        return await anyio.to_thread.run_sync(self._entry, schema)

    async def save(self, plugin_id: str, raw: str) -> None:
        """Validate and keep ``raw``. Raises :class:`SettingsNotFound`, :class:`InvalidSettings`."""
        schema = await self._schema(plugin_id)
        values = _parse(raw)
        try:
            schema.validator.validate(values)
        except ValidationError as exc:
            where = "/".join(str(p) for p in exc.absolute_path) or "(top level)"
            raise InvalidSettings(
                f"settings for {plugin_id} fail the schema at {where}: {exc.message}"
            ) from None
        path = settings_path(self.directory, plugin_id)
        await anyio.to_thread.run_sync(write_atomically, path, raw)

    async def _locate(self) -> dict[str, Path]:
        extensions = await self.frontend.federated_extensions()
        return await anyio.to_thread.run_sync(self.catalog.locate, extensions)

    async def _schema(self, plugin_id: str) -> PluginSchema:
        settings_path(self.directory, plugin_id)  # refuses malformed ids early
        located = await self._locate()
        path = located.get(plugin_id)
        if path is None:
            raise SettingsNotFound(f"no settings schema for {plugin_id}")
        try:
            return await anyio.to_thread.run_sync(self.catalog.load, plugin_id, path)
        except (OSError, ValueError) as exc:
            _log_bad_schema(plugin_id, exc)
            raise SettingsNotFound(f"the settings schema of {plugin_id} is broken") from None

    def _entry(self, schema: PluginSchema) -> SettingEntry:
        """Blocking: reads the user's file."""
        path = settings_path(self.directory, schema.plugin_id)
        raw, values, warning = "{}", {}, None
        last_modified = created = None
        try:
            text = path.read_text("utf-8")
            info = path.stat()
        except OSError:
            text = ""
        else:
            last_modified = isoformat(_utc(info.st_mtime))
            created = isoformat(_utc(info.st_ctime))
        if text.strip():
            try:
                values = _parse(text)
                schema.validator.validate(values)
                raw = text
            except (InvalidSettings, ValidationError) as exc:
                warning = f"ignored saved settings of {schema.plugin_id}: {exc.message}"
                log.warning("%s", warning)
                values = {}
        return SettingEntry(
            id=schema.plugin_id,
            schema_=schema.schema,
            version=schema.version,
            raw=raw,
            settings=values,
            warning=warning,
            last_modified=last_modified,
            created=created,
        )


def _parse(raw: str) -> dict[str, Any]:
    try:
        values = json5.loads(raw)
    except ValueError as exc:
        raise InvalidSettings(f"settings are not valid JSON5: {exc}") from None
    if not isinstance(values, dict):
        raise InvalidSettings("settings must be a JSON object")
    return values


def _utc(timestamp: float) -> datetime:
    return datetime.fromtimestamp(timestamp, UTC)


def _log_bad_schema(plugin_id: str, exc: Exception) -> None:
    log.warning("skipping settings of %s: %s", plugin_id, exc)
