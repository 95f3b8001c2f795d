"""``TableSettingsStore``: user settings in the ``lab_settings`` table, validated against
plugin schemas.

Each row holds exactly the JSON5 text the user saved, comments included. All rows are read
once, on first use, and kept in memory; saves write through to the table, so serving the
settings costs no query. The ``<dir>/<package>/<plugin>.jupyterlab-settings`` files that
JupyterLab users know are imported once (see :mod:`junction.plugins.lab.imports`);
:func:`settings_path` maps ids to those files.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import anyio
import json5
from sqlalchemy import select

from junction.database import Database, upsert
from junction.plugins.frontend.service import FrontendService
from junction.plugins.lab.models import SettingEntry
from junction.plugins.lab.schemas import PluginSchema, SchemaCatalog
from junction.plugins.lab.service import InvalidSettings, SettingsNotFound
from junction.plugins.lab.tables import SETTINGS, as_utc, stored_key, user_key
from junction.services import isoformat, utcnow

__all__ = [
    "SETTINGS_SUFFIX",
    "StoredSettings",
    "TableSettingsStore",
    "check_plugin_id",
    "settings_path",
]
SETTINGS_SUFFIX = ".jupyterlab-settings"

log = logging.getLogger("junction.lab")

_PLUGIN_ID = re.compile(r"(@[\w.-]+/)?[\w.-]+:[\w.-]+")


def check_plugin_id(plugin_id: str) -> None:
    """Refuse a malformed plugin id (:class:`SettingsNotFound`)."""
    settings_path(Path("/"), plugin_id)


def settings_path(directory: Path, plugin_id: str) -> Path:
    """Where a plugin's user settings file lives in ``directory`` (the layout of JupyterLab's
    user-settings directory); :class:`SettingsNotFound` for a malformed id."""
    if not _PLUGIN_ID.fullmatch(plugin_id):
        raise SettingsNotFound(f"no settings for {plugin_id!r}")
    package, _, plugin = plugin_id.partition(":")
    parts = [*package.split("/"), plugin + SETTINGS_SUFFIX]
    if any(part in (".", "..") or part.startswith(".") for part in parts):
        raise SettingsNotFound(f"no settings for {plugin_id!r}")
    return directory.joinpath(*parts)


@dataclass(frozen=True, slots=True)
class StoredSettings:
    """One plugin's saved settings, as a row of ``lab_settings`` holds them."""

    raw: str
    created: datetime
    last_modified: datetime


class TableSettingsStore:
    """The settings store over the ``lab_settings`` table (see the module docstring)."""

    def __init__(
        self, catalog: SchemaCatalog, database: Database, frontend: FrontendService
    ) -> None:
        self.catalog = catalog
        self.database = database
        self.frontend = frontend
        self._saved: dict[str, dict[str, StoredSettings]] = {}  # per user, then plugin id
        self._loading = anyio.Lock()

    async def ids(self) -> list[str]:
        """Every plugin id with a schema, sorted."""
        located = await self._locate()
        return sorted(located)

    async def list(self) -> list[SettingEntry]:
        """Every plugin's settings (schemas that fail to load are logged and left out)."""
        located = await self._locate()
        saved = await self._load()

        def read_all() -> list[SettingEntry]:
            entries = []
            for plugin_id in sorted(located):
                try:
                    schema = self.catalog.load(plugin_id, located[plugin_id])
                except (OSError, ValueError) as exc:
                    _log_bad_schema(plugin_id, exc)
                    continue
                entries.append(_entry(schema, saved.get(plugin_id)))
            return entries

        return await anyio.to_thread.run_sync(read_all)

    async def get(self, plugin_id: str) -> SettingEntry:
        """One plugin's settings. Raises :class:`SettingsNotFound`."""
        schema = await self._schema(plugin_id)
        saved = await self._load()
        return _entry(schema, saved.get(plugin_id))

    async def save(self, plugin_id: str, raw: str) -> None:
        """Validate and keep ``raw``. Raises :class:`SettingsNotFound`, :class:`InvalidSettings`,
        and :class:`~junction.errors.DatabaseUnavailable` (nothing saved then)."""
        from jsonschema.exceptions import ValidationError  # loaded with the first schema

        schema = await self._schema(plugin_id)
        values = _parse(raw)
        try:
            schema.validator.validate(values)
        except ValidationError as exc:
            where = "/".join(str(p) for p in exc.absolute_path) or "(top level)"
            raise InvalidSettings(
                f"settings for {plugin_id} fail the schema at {where}: {exc.message}"
            ) from None
        saved = await self._load()
        now = utcnow()
        user = user_key()
        row = {
            "plugin_id": stored_key(user, plugin_id),
            "user": user,
            "raw": raw,
            "created": now,
            "last_modified": now,
        }
        async with self.database.session() as session:
            await session.execute(upsert(self.database.dialect, SETTINGS, "plugin_id", row))
        before = saved.get(plugin_id)
        saved[plugin_id] = StoredSettings(raw, before.created if before else now, now)

    async def _load(self) -> dict[str, StoredSettings]:
        """The current user's saved rows (see :func:`user_key`), read from the table once
        (one query) and then kept."""
        user = user_key()
        async with self._loading:
            found = self._saved.get(user)
            if found is None:
                query = select(
                    SETTINGS.c.plugin_id,
                    SETTINGS.c.raw,
                    SETTINGS.c.created,
                    SETTINGS.c.last_modified,
                ).where(SETTINGS.c.user == user)
                async with self.database.session() as session:
                    rows = (await session.execute(query)).all()
                prefix = len(stored_key(user, ""))
                found = self._saved[user] = {
                    row[0][prefix:]: StoredSettings(row[1], as_utc(row[2]), as_utc(row[3]))
                    for row in rows
                }
            return found

    async def _locate(self) -> dict[str, Path]:
        extensions = await self.frontend.federated_extensions()
        return await anyio.to_thread.run_sync(self.catalog.locate, extensions)

    async def _schema(self, plugin_id: str) -> PluginSchema:
        check_plugin_id(plugin_id)
        located = await self._locate()
        path = located.get(plugin_id)
        if path is None:
            raise SettingsNotFound(f"no settings schema for {plugin_id}")
        try:
            return await anyio.to_thread.run_sync(self.catalog.load, plugin_id, path)
        except (OSError, ValueError) as exc:
            _log_bad_schema(plugin_id, exc)
            raise SettingsNotFound(f"the settings schema of {plugin_id} is broken") from None


def _entry(schema: PluginSchema, saved: StoredSettings | None) -> SettingEntry:
    from jsonschema.exceptions import ValidationError  # loaded with the first schema

    raw, values, warning = "{}", {}, None
    last_modified = created = None
    if saved is not None:
        last_modified = isoformat(saved.last_modified)
        created = isoformat(saved.created)
        if saved.raw.strip():
            try:
                values = _parse(saved.raw)
                schema.validator.validate(values)
                raw = saved.raw
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


def _log_bad_schema(plugin_id: str, exc: Exception) -> None:
    log.warning("skipping settings of %s: %s", plugin_id, exc)
