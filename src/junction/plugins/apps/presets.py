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

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Literal

__all__ = ["PRESETS", "Preset"]


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
    ),
}
"""The built-in frameworks, by name."""
