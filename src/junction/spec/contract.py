"""One plugin's spec files, and the check that they describe every route it serves.

The check runs when the registry composes the enabled plugins, before anything starts. It
reads only the enabled plugins' files, and only the parts it needs: the method and path of
every OpenAPI operation, the address of every AsyncAPI channel. Route paths are compared in
their OpenAPI form, relative to the base URL (``/api/contents/{path}``: Starlette's
``{path:path}`` converter becomes ``{path}``).
"""

from __future__ import annotations

import functools
import os
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from fastapi import APIRouter
from fastapi.routing import APIRoute, APIWebSocketRoute
from starlette.routing import Mount

from junction.errors import PluginGraphError

__all__ = [
    "ASYNCAPI_FILE",
    "HTTP_METHODS",
    "OPENAPI_FILE",
    "WEBSOCKET",
    "Contract",
    "check_described",
    "load_yaml",
    "route_keys",
    "scan_channels",
    "scan_operations",
]

OPENAPI_FILE = "openapi.yaml"
ASYNCAPI_FILE = "asyncapi.yaml"
WEBSOCKET = "WEBSOCKET"
"""The method of a WebSocket route in a route key."""
HTTP_METHODS = ("get", "put", "post", "delete", "options", "head", "patch", "trace")


def load_yaml(path: Path) -> Any:
    """Parse a YAML file with libyaml's C parser when it is available (10x faster)."""
    import yaml

    loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
    with path.open("rb") as stream:
        return yaml.load(stream, Loader=loader)  # noqa: S506 - a safe loader


def route_keys(routers: Iterable[APIRouter]) -> list[tuple[str, str]]:
    """``(METHOD, path)`` for every route of ``routers``, paths in OpenAPI form.

    WebSocket routes have the method ``WEBSOCKET``; a mount at ``/x`` is ``(GET, /x/{path})``.
    """
    keys: list[tuple[str, str]] = []
    for router in routers:
        for route in router.routes:
            if isinstance(route, APIRoute):
                keys.extend((method, route.path_format) for method in sorted(route.methods or ()))
            elif isinstance(route, APIWebSocketRoute):
                keys.append((WEBSOCKET, route.path_format))
            elif isinstance(route, Mount):
                keys.append(("GET", route.path.rstrip("/") + "/{path}"))
    return keys


@dataclass(frozen=True)
class Contract:
    """The spec files a plugin ships in ``directory``, parsed on first use."""

    directory: Path

    @property
    def openapi_path(self) -> Path:
        """Where the plugin's OpenAPI document lives."""
        return self.directory / OPENAPI_FILE

    @property
    def asyncapi_path(self) -> Path:
        """Where the plugin's AsyncAPI document lives."""
        return self.directory / ASYNCAPI_FILE

    @functools.cached_property
    def openapi(self) -> dict[str, Any]:
        """The OpenAPI document, or an empty one when the file does not exist."""
        return _read(self.openapi_path)

    @functools.cached_property
    def asyncapi(self) -> dict[str, Any]:
        """The AsyncAPI document, or an empty one when the file does not exist."""
        return _read(self.asyncapi_path)

    def operations(self) -> set[tuple[str, str]]:
        """``(METHOD, path)`` of every operation the OpenAPI document describes.

        Reads the file's ``paths`` block line by line when it has the generator's layout
        (a few milliseconds instead of parsing all of it); parses the YAML otherwise.
        """
        if "openapi" not in self.__dict__:
            try:
                text = self.openapi_path.read_text(encoding="utf-8")
            except FileNotFoundError:
                return set()
            quick = scan_operations(text)
            if quick is not None:
                return quick
        described = set()
        for path, item in (self.openapi.get("paths") or {}).items():
            for method in item or {}:
                if method in HTTP_METHODS:
                    described.add((method.upper(), path))
        return described

    def channels(self) -> set[str]:
        """The address of every channel the AsyncAPI document describes.

        Like :meth:`operations`, reads the ``channels`` block line by line when it can.
        """
        if "asyncapi" not in self.__dict__:
            try:
                text = self.asyncapi_path.read_text(encoding="utf-8")
            except FileNotFoundError:
                return set()
            quick = scan_channels(text)
            if quick is not None:
                return quick
        channels = self.asyncapi.get("channels") or {}
        return {channel.get("address") for channel in channels.values() if channel}


# A mapping key on its own line: 'single-quoted', "double-quoted" or plain; then its value.
_KEY = re.compile(
    r"""^( *)(?:'((?:[^']|'')*)'|"([^"\\]*)"|([^\s'"#{\[&*!|>?-][^:#]*?)):(?: +(.*))?$"""
)
_PATH_ITEM_KEYS = frozenset({*HTTP_METHODS, "summary", "description", "parameters", "servers"})


def _block(text: str, top: str) -> list[tuple[int, str, str]] | None:
    """``(indent, key, value)`` of the keys of the first two levels inside the block ``top``.

    Deeper lines are skipped unread (a block scalar's lines are always deeper than its key).
    Returns None when the block is not in plain block style (flow style, anchors, complex
    keys...), so that the caller parses the YAML instead.
    """
    if text.startswith(f"{top}:\n"):
        start = len(top) + 2
    else:
        found = text.find(f"\n{top}:\n")
        if found < 0:
            return [] if re.search(rf"^{top}\s*:", text, re.MULTILINE) is None else None
        start = found + len(top) + 3
    entries: list[tuple[int, str, str]] = []
    levels: list[int] = []
    for line in text[start:].splitlines():
        body = line.lstrip(" ")
        if not body or body.startswith("#"):
            continue
        indent = len(line) - len(body)
        if indent == 0:
            break
        if len(levels) == 2 and indent > levels[1]:
            continue
        if indent not in levels:
            if levels and indent < levels[-1]:
                return None
            levels.append(indent)
        if body.startswith("- "):
            continue
        match = _KEY.match(line)
        if match is None:
            return None
        key = match[2].replace("''", "'") if match[2] is not None else match[3] or match[4]
        value = (match[5] or "").strip()
        if value.startswith(("&", "*")) or key == "<<":
            return None
        entries.append((indent, key.strip(), value))
    return entries


def scan_operations(text: str) -> set[tuple[str, str]] | None:
    """``(METHOD, path)`` of the operations in an OpenAPI document's text, or None if unsure."""
    entries = _block(text, "paths")
    if entries is None:
        return None
    if not entries:
        return set()
    path_indent = entries[0][0]
    item_indent: int | None = None
    described: set[tuple[str, str]] = set()
    path = ""
    for indent, key, value in entries:
        if indent == path_indent:
            if value:
                return None
            path = key
        elif indent < path_indent:
            return None
        else:
            item_indent = indent if item_indent is None else item_indent
            if indent != item_indent:
                continue
            if key not in _PATH_ITEM_KEYS:
                return None
            if key in HTTP_METHODS:
                described.add((key.upper(), path))
    return described


def scan_channels(text: str) -> set[str] | None:
    """The channel addresses in an AsyncAPI document's text, or None if unsure."""
    entries = _block(text, "channels")
    if entries is None:
        return None
    if not entries:
        return set()
    channel_indent = entries[0][0]
    field_indent: int | None = None
    addresses: dict[str, str] = {}
    channel = ""
    for indent, key, value in entries:
        if indent == channel_indent:
            if value:
                return None
            channel = key
            addresses[channel] = ""
        elif indent < channel_indent:
            return None
        else:
            field_indent = indent if field_indent is None else field_indent
            if indent == field_indent and key == "$ref":
                return None
            if indent == field_indent and key == "address":
                addresses[channel] = value.strip("'\"")
    if not all(addresses.values()):
        return None
    return set(addresses.values())


def _read(path: Path) -> dict[str, Any]:
    try:
        document = load_yaml(path)
    except FileNotFoundError:
        return {}
    except Exception as exc:
        raise PluginGraphError(f"{_shown(path)} is not valid YAML: {exc}") from exc
    if document is None:
        return {}
    if not isinstance(document, dict):
        raise PluginGraphError(f"{_shown(path)} does not hold a YAML mapping")
    return document


def _shown(path: Path) -> str:
    """``path`` relative to the working directory when it is inside it (shorter messages)."""
    try:
        return os.path.relpath(path) if path.is_relative_to(Path.cwd()) else str(path)
    except ValueError:
        return str(path)


def check_described(name: str, routers: Sequence[APIRouter], contract: Contract) -> None:
    """Raise :class:`PluginGraphError` unless ``contract`` describes every route of ``routers``.

    Called by the registry for each enabled plugin, before anything starts. The message names
    the plugin, the first undescribed route, the file to edit and the command that fixes it.
    """
    keys = route_keys(routers)
    if not keys:
        return
    missing: list[tuple[str, str, Path]] = []
    http = [key for key in keys if key[0] != WEBSOCKET]
    if http:
        described = contract.operations()
        missing.extend((m, p, contract.openapi_path) for m, p in http if (m, p) not in described)
    sockets = [path for method, path in keys if method == WEBSOCKET]
    if sockets:
        addresses = contract.channels()
        missing.extend(
            ("WebSocket", p, contract.asyncapi_path) for p in sockets if p not in addresses
        )
    if not missing:
        return
    method, path, file = missing[0]
    more = f" (and {len(missing) - 1} more undescribed routes)" if len(missing) > 1 else ""
    raise PluginGraphError(
        f"plugin {name}: {method} {path} is not described in {_shown(file)}{more}; "
        f"describe it, or run `python -m junction.spec write {name}` and review the diff"
    )
