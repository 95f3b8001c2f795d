"""Settings of the apps plugin (section ``[apps]``)."""

from __future__ import annotations

from typing import Any

from pydantic import Field

from junction.plugin import PluginSettings

__all__ = ["AppsSettings"]

KiB = 1 << 10
MiB = 1 << 20


class AppsSettings(PluginSettings):
    """Web apps (Streamlit, Panel, ...) run on demand, each served on a host name of its own."""

    port: int = Field(
        0,
        ge=0,
        le=65535,
        description="Port of the apps listener, which serves every app on its own host name. "
        "0: a free port picked at startup.",
    )
    domain: str = Field(
        "{app}.apps.localhost",
        description="Host name of an app; '{app}' is replaced by its id. The default works on "
        "loopback (browsers resolve *.localhost there); deployments set a wildcard name such "
        "as '{app}.apps.example.org' pointing at the apps listener.",
    )
    public_url: str | None = Field(
        None,
        description="URL of an app as browsers reach it, e.g. 'https://{app}.apps.example.org/' "
        "behind a TLS proxy. None: http://{domain}:{port}/.",
    )
    junction_url: str | None = Field(
        None,
        description="Junction's own URL as browsers reach it, where app hosts send users to "
        "log in. None: built from the server's configured scheme and address and the port it "
        "listens on (never from a request's Host header); set it behind a reverse proxy.",
    )
    start_timeout: float = Field(
        60, gt=0, description="Seconds an app may take to answer its readiness check."
    )
    stop_timeout: float = Field(
        5, gt=0, description="Seconds between SIGTERM and SIGKILL when stopping an app."
    )
    restart_limit: int = Field(
        3, ge=0, description="Restarts after a crash before the app is marked failed."
    )
    log_limit: int = Field(
        256 * KiB, ge=1024, description="Most recent output kept per app (bytes)."
    )
    cull_idle_timeout: float = Field(
        0,
        ge=0,
        description="Stop apps with no HTTP request or WebSocket message for this many "
        "seconds (they start again on the next visit). 0: never.",
    )
    cull_interval: float = Field(60, gt=0, description="Seconds between idle checks.")
    websocket_max_message_size: int = Field(
        64 * MiB,
        gt=0,
        description="Largest WebSocket message passed through the proxy, either way.",
    )
    port_proxy: bool = Field(
        True,
        description="Serve /proxy/{port}/ on Junction's own origin for loopback ports "
        "(jupyter-server-proxy's route). Same origin: a page served there runs with the "
        "user's Junction session. Always off when the users plugin runs.",
    )
    predefined: list[dict[str, Any]] = Field(
        default_factory=list,
        description="Apps defined by the operator, each a creation body with an 'id' "
        "(e.g. {id = 'dash', framework = 'streamlit', path = 'dash/app.py'}).",
    )
