"""Layering of configuration sources into :class:`~junction.settings.ServerSettings`.

Lowest first: defaults < TOML file < environment < command line. Every layer is a nested dict
of the same shape as the TOML file: server settings at the top, one table per plugin::

    port = 9000
    profile = "gateway"

    [kernels]
    cull_idle_timeout = 600

Environment variables: ``JUNCTION_PORT=9000``, ``JUNCTION_KERNELS__CULL_IDLE_TIMEOUT=600``.
Command line: the flags, and ``--set kernels.cull_idle_timeout=600`` for any setting.
Values from the environment and ``--set`` are parsed as JSON when they are valid JSON
(``true``, ``600``, ``["a"]``), and taken as strings otherwise.
"""

from __future__ import annotations

import json
import os
import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from jupyter_core.paths import jupyter_config_dir
from pydantic import ValidationError

from junction.errors import ConfigError
from junction.settings import ServerSettings

__all__ = [
    "ENV_PREFIX",
    "default_config_file",
    "environment_layer",
    "load_settings",
    "merge",
    "parse_assignment",
]

ENV_PREFIX = "JUNCTION_"


def default_config_file() -> Path:
    """Where ``junction`` looks for a config file when ``--config`` is not given."""
    return Path(jupyter_config_dir()) / "junction.toml"


def merge(base: dict[str, Any], layer: Mapping[str, Any]) -> dict[str, Any]:
    """Deep-merge ``layer`` over ``base`` (tables merge, everything else replaces)."""
    merged = dict(base)
    for key, value in layer.items():
        if isinstance(value, Mapping) and isinstance(merged.get(key), dict):
            merged[key] = merge(merged[key], value)
        else:
            merged[key] = value
    return merged


def _parse_value(text: str) -> Any:
    """JSON when ``text`` is JSON (numbers, booleans, lists, objects, null), else the text.

    A number whose JSON value does not print back as ``text`` (``1e5``, ``1.50``) stays text:
    a text setting (a token, a secret) keeps exactly what was typed, and a number setting
    reads it all the same. Settings models turn numbers given for text settings into that
    text (``token=1234`` is the token ``"1234"``).
    """
    try:
        value = json.loads(text)
    except ValueError:
        return text
    if isinstance(value, int | float) and not isinstance(value, bool) and str(value) != text:
        return text
    return value


def _nest(path: list[str], value: Any) -> dict[str, Any]:
    nested: dict[str, Any] = {path[-1]: value}
    for part in reversed(path[:-1]):
        nested = {part: nested}
    return nested


def parse_assignment(assignment: str) -> dict[str, Any]:
    """Turn ``--set`` text such as ``kernels.cull_idle_timeout=600`` into a nested layer."""
    key, sep, value = assignment.partition("=")
    path = [part.strip().replace("-", "_") for part in key.split(".")]
    if not sep:  # not echoed: a value may be glued to the key
        raise ConfigError("--set expects plugin.key=value; an argument of --set has no '='")
    if not all(path):
        raise ConfigError(f"--set expects plugin.key=value, got the key {key!r}")
    return _nest(path, _parse_value(value))


def environment_layer(environ: Mapping[str, str]) -> dict[str, Any]:
    """Collect ``JUNCTION_*`` variables; ``__`` separates a plugin from its key."""
    layer: dict[str, Any] = {}
    for name, value in environ.items():
        if not name.startswith(ENV_PREFIX) or len(name) == len(ENV_PREFIX):
            continue
        path = name[len(ENV_PREFIX) :].lower().split("__")
        layer = merge(layer, _nest(path, _parse_value(value)))
    return layer


def _file_layer(path: Path | None) -> dict[str, Any]:
    if path is None:
        candidate = default_config_file()
        if not candidate.is_file():
            return {}
        path = candidate
    try:
        with path.open("rb") as handle:
            return tomllib.load(handle)
    except FileNotFoundError:
        raise ConfigError(f"config file {path} does not exist") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"config file {path} is not valid TOML: {exc}") from exc


def _split_sections(layer: Mapping[str, Any]) -> dict[str, Any]:
    """Move every table that is not a server setting into ``plugins``."""
    server_fields = set(ServerSettings.model_fields)
    result: dict[str, Any] = {}
    plugins: dict[str, Any] = {}
    for key, value in layer.items():
        if key == "plugins" and isinstance(value, Mapping):
            plugins = merge(plugins, value)
        elif key in server_fields:
            result[key] = value
        elif isinstance(value, Mapping):
            plugins[key] = dict(value)
        else:
            raise ConfigError(f"unknown setting {key!r} (see 'junction --help')")
    if plugins:
        result["plugins"] = plugins
    return result


def load_settings(
    *,
    config_file: Path | None = None,
    environ: Mapping[str, str] | None = None,
    overrides: Mapping[str, Any] | None = None,
) -> ServerSettings:
    """Build the effective settings from every layer; raises :class:`ConfigError` on bad input.

    ``overrides`` is the command line's layer, in the same nested shape.
    """
    environ = os.environ if environ is None else environ
    layered: dict[str, Any] = {}
    for layer in (_file_layer(config_file), environment_layer(environ), overrides or {}):
        layered = merge(layered, _split_sections(layer))
    try:
        return ServerSettings.model_validate(layered)
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in err['loc'])}: {err['msg']}" for err in exc.errors()
        )
        raise ConfigError(f"invalid settings: {problems}") from None
