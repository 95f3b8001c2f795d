"""Plugin settings schemas: where they are, and the defaults an admin lays over them.

Schemas ship as ``<schemas dir>/<package>/<plugin>.json`` (``<package>`` may be
``@scope/name``), in the core app's ``schemas/`` and in each prebuilt extension's
``schemas/``; the plugin id is ``<package>:<plugin>``, and an extension's copy wins over the
core's. A ``package.json.orig`` next to them carries the package version.

Admin defaults ("overrides") replace a property's ``default`` in the schema (objects are
merged), lowest first: ``<app settings dir>/overrides.d/*.json[5]``, ``overrides.json[5]``,
``labconfig/default_setting_overrides.json`` in each Jupyter config dir (system first), then
the ``lab.default_settings`` setting.
"""

from __future__ import annotations

import copy
import json
import logging
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from jupyter_core.paths import jupyter_config_path

from junction.jsonfiles import merge, read_json_object
from junction.plugins.frontend.models import FederatedExtension

if TYPE_CHECKING:
    from jsonschema import Draft7Validator

__all__ = ["PluginSchema", "SchemaCatalog", "apply_overrides", "load_overrides", "schema_files"]

log = logging.getLogger("junction.lab")

Overrides = dict[str, dict[str, Any]]


@dataclass(frozen=True, slots=True)
class PluginSchema:
    """A plugin's schema as served: admin defaults applied, validator ready."""

    plugin_id: str
    schema: dict[str, Any]
    version: str
    validator: Draft7Validator


def schema_files(root: Path) -> dict[str, Path]:
    """Plugin id -> schema file for every ``<package>/<plugin>.json`` under ``root``."""
    found: dict[str, Path] = {}
    try:
        candidates = sorted(root.glob("**/*.json"))
    except OSError:
        return found
    for path in candidates:
        package = path.parent.relative_to(root).as_posix()
        if package == ".":
            continue
        found[f"{package}:{path.stem}"] = path
    return found


def load_overrides(
    app_settings_dir: Path,
    extra: Mapping[str, Mapping[str, Any]] | None = None,
    config_dirs: Iterable[Path] | None = None,
) -> Overrides:
    """Every admin default, merged per plugin id (see the module docstring for the order).

    Blocking: call it at startup. Unreadable files are logged and skipped.
    """
    overrides: Overrides = {}
    dropins = app_settings_dir / "overrides.d"
    paths = [
        *sorted([*dropins.glob("*.json"), *dropins.glob("*.json5")]),
        app_settings_dir / "overrides.json",
        app_settings_dir / "overrides.json5",
    ]
    if config_dirs is None:
        config_dirs = [Path(p) for p in jupyter_config_path()]
    for directory in reversed(list(config_dirs)):
        paths.append(directory / "labconfig" / "default_setting_overrides.json")
    layers: list[Mapping[str, Any]] = [
        data for path in paths if (data := read_json_object(path, "settings overrides"))
    ]
    layers.append(dict(extra or {}))
    for layer in layers:
        for plugin_id, values in layer.items():
            if isinstance(values, Mapping):
                merge(overrides.setdefault(plugin_id, {}), values)
    return overrides


def apply_overrides(schema: dict[str, Any], values: Mapping[str, Any]) -> dict[str, Any]:
    """Lay admin defaults over a schema's property defaults (in place); returns it."""
    properties = schema.setdefault("properties", {})
    for key, value in values.items():
        prop = properties.get(key)
        if not isinstance(prop, dict):
            properties[key] = {"default": copy.deepcopy(value)}
            continue
        default = prop.get("default")
        if isinstance(default, dict) and isinstance(value, Mapping):
            prop["default"] = merge(default, value)
        else:
            prop["default"] = copy.deepcopy(value)
    return schema


class SchemaCatalog:
    """Finds and loads plugin schemas, caching each by file modification time.

    Methods touch the disk: call them from a worker thread.
    """

    def __init__(self, core_dir: Path, overrides: Overrides) -> None:
        self.core_dir = core_dir
        self.overrides = overrides
        self._cache: dict[Path, tuple[int, PluginSchema]] = {}

    def locate(self, extensions: Sequence[FederatedExtension]) -> dict[str, Path]:
        """Plugin id -> schema file, core first and extensions over it."""
        found = schema_files(self.core_dir)
        for extension in extensions:
            found.update(schema_files(extension.path / "schemas"))
        return found

    def load(self, plugin_id: str, path: Path) -> PluginSchema:
        """The schema at ``path`` with overrides applied.

        Raises ``OSError`` if unreadable and ``ValueError`` if it is not a valid JSON schema.
        """
        # jsonschema (4 MB with its dependencies) loads with the first schema, not at startup.
        from jsonschema import Draft7Validator
        from jsonschema.exceptions import SchemaError

        mtime = path.stat().st_mtime_ns
        cached = self._cache.get(path)
        if cached is not None and cached[0] == mtime:
            return cached[1]
        schema = json.loads(path.read_text("utf-8"))
        if not isinstance(schema, dict):
            raise ValueError(f"schema of {plugin_id} is not an object")
        apply_overrides(schema, self.overrides.get(plugin_id, {}))
        try:
            Draft7Validator.check_schema(schema)
        except SchemaError as exc:
            raise ValueError(f"invalid schema for {plugin_id}: {exc.message}") from None
        loaded = PluginSchema(plugin_id, schema, _version(path.parent), Draft7Validator(schema))
        self._cache[path] = (mtime, loaded)
        return loaded


def _version(directory: Path) -> str:
    try:
        package = json.loads((directory / "package.json.orig").read_text("utf-8"))
        return str(package["version"])
    except (OSError, ValueError, KeyError, TypeError):
        return "N/A"
