"""Framework presets: how to run each framework behind the proxy, as data.

Each preset is a command template, extra environment, the prefix mode, the readiness path
and the origin flags. Templates may use ``{port}``, ``{address}``, ``{base_url}`` (the path
the browser sees the app under, ending in ``/``), ``{file}`` (absolute), ``{stem}`` (file
name without suffix), ``{public_host}`` (the host:port browsers use) and ``{public_origin}``.

Prefix modes: ``strip`` means the app sees paths without the prefix, ``preserve`` means it
is told its prefix and sees full paths. Apps are served at the root of their own host, so
the prefix is ``/`` and both modes coincide there; they differ on ``/proxy/{port}/``.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

__all__ = [
    "DETECTION_ORDER",
    "DETECT_LIMIT",
    "PRESETS",
    "Preset",
    "detect_framework",
    "detect_frameworks",
]

DETECT_LIMIT = 500
"""Files looked at per folder by :func:`detect_frameworks` (the first, by name)."""
_READ_BYTES = 64 * 1024


@dataclass(frozen=True)
class Preset:
    """How one framework runs: see the module docstring for the template fields."""

    command: tuple[str, ...]
    env: Mapping[str, str] = field(default_factory=dict)
    prefix: Literal["strip", "preserve"] = "strip"
    ready_path: str = "/"
    origin_flags: str = ""
    """What the command passes so the framework's WebSocket origin check accepts the app host."""
    suffixes: tuple[str, ...] = (".py",)
    imports: tuple[str, ...] = ()
    """Top-level modules whose import marks a file as this framework's app ("Open as app");
    a preset without any claims every file with its suffix."""


PRESETS: Mapping[str, Preset] = {
    "streamlit": Preset(
        command=(
            "{python}",
            "-m",
            "streamlit",
            "run",
            "{file}",
            "--server.port={port}",
            "--server.address={address}",
            "--server.baseUrlPath={base_url}",
            "--server.headless=true",
            "--browser.gatherUsageStats=false",
            "--server.fileWatcherType=none",
        ),
        prefix="preserve",
        ready_path="_stcore/health",
        origin_flags="none: Streamlit compares Origin with Host, and the proxy keeps Host",
        imports=("streamlit",),
    ),
    "panel": Preset(
        command=(
            "{python}",
            "-m",
            "panel",
            "serve",
            "{file}",
            "--port",
            "{port}",
            "--address",
            "{address}",
            "--prefix",
            "{base_url}",
            "--allow-websocket-origin={public_host}",
            "--index",
            "{stem}",
            "--exclude-headers",
            "cookie",
            "--exclude-cookies",
            "*",
        ),
        prefix="preserve",
        ready_path="{stem}",
        origin_flags="--allow-websocket-origin={public_host}",
        imports=("panel",),
    ),
    "bokeh": Preset(
        command=(
            "{python}",
            "-m",
            "bokeh",
            "serve",
            "{file}",
            "--port",
            "{port}",
            "--address",
            "{address}",
            "--prefix",
            "{base_url}",
            "--allow-websocket-origin={public_host}",
        ),
        prefix="preserve",
        ready_path="{stem}",
        origin_flags="--allow-websocket-origin={public_host}",
        imports=("bokeh",),
    ),
    "voila": Preset(
        command=(
            "{python}",
            "-m",
            "voila",
            "{file}",
            "--port={port}",
            "--no-browser",
            "--Voila.ip={address}",
            "--Voila.base_url={base_url}",
            "--Voila.server_url=/",
            "--Voila.port_retries=0",
            "--Voila.tornado_settings=allow_origin={public_origin}",
        ),
        ready_path="voila/static/voila.js",
        origin_flags="--Voila.tornado_settings=allow_origin={public_origin}",
        suffixes=(".ipynb",),
    ),
    "gradio": Preset(
        command=("{python}", "{file}"),
        env={
            "GRADIO_SERVER_PORT": "{port}",
            "GRADIO_SERVER_NAME": "{address}",
            "GRADIO_ROOT_PATH": "{public_origin}",
            "GRADIO_NUM_PORTS": "1",
            "GRADIO_ANALYTICS_ENABLED": "False",
            "GRADIO_SSR_MODE": "False",
        },
        ready_path="config",
        origin_flags="none: Gradio uses server-sent events, no WebSocket",
        imports=("gradio",),
    ),
    "dash": Preset(
        command=("{python}", "{file}"),
        env={
            "HOST": "{address}",
            "PORT": "{port}",
            "DASH_REQUESTS_PATHNAME_PREFIX": "{base_url}",
            "DASH_ROUTES_PATHNAME_PREFIX": "/",
        },
        ready_path="_dash-layout",
        origin_flags="none: Origin must equal Host, which the proxy keeps",
        imports=("dash",),
    ),
}
"""The built-in frameworks, by name."""

DETECTION_ORDER = ("streamlit", "gradio", "dash", "panel", "bokeh", "voila")
"""Which preset wins when a file imports several frameworks (a Panel app imports Bokeh)."""


def _import_pattern(modules: tuple[str, ...]) -> re.Pattern[str]:
    names = "|".join(re.escape(m) for m in modules)
    return re.compile(rf"^[ \t]*(?:import|from)[ \t]+(?:{names})\b", re.MULTILINE)


_PATTERNS = {
    name: _import_pattern(PRESETS[name].imports)
    for name in DETECTION_ORDER
    if PRESETS[name].imports
}


def detect_framework(file: Path) -> str | None:
    """The preset that would run ``file``: the first in :data:`DETECTION_ORDER` whose suffix
    matches and whose framework the file imports (only its first 64 KiB are read)."""
    suffix = file.suffix.lower()
    candidates = [name for name in DETECTION_ORDER if suffix in PRESETS[name].suffixes]
    if not candidates:
        return None
    text: str | None = None
    for name in candidates:
        pattern = _PATTERNS.get(name)
        if pattern is None:
            return name
        if text is None:
            try:
                with file.open("rb") as stream:
                    text = stream.read(_READ_BYTES).decode("utf-8", errors="replace")
            except OSError:
                return None
        if pattern.search(text):
            return name
    return None


def detect_frameworks(directory: Path) -> dict[str, str]:
    """The files directly in ``directory`` that a preset would run, by name; hidden files
    and everything past the first :data:`DETECT_LIMIT` names are left out."""
    try:
        names = sorted(p.name for p in directory.iterdir() if not p.name.startswith("."))
    except OSError:
        return {}
    found: dict[str, str] = {}
    for name in names[:DETECT_LIMIT]:
        file = directory / name
        if not file.is_file():
            continue
        framework = detect_framework(file)
        if framework is not None:
            found[name] = framework
    return found
