"""The server's own settings (plugins describe theirs in their ``settings.py``).

Values come, lowest first, from: defaults < the TOML config file < ``JUNCTION_*`` environment
variables < the command line. :mod:`junction.config` does the layering; this module only says
what each setting means and checks its value.
"""

from __future__ import annotations

import ipaddress
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, SecretStr, field_validator

__all__ = ["LOOPBACK_NAMES", "ServerSettings", "default_database_url"]

LOOPBACK_NAMES = frozenset({"localhost", "127.0.0.1", "::1", "ip6-localhost"})


def _split_list(value: Any) -> Any:
    if isinstance(value, str):
        return [item.strip() for item in value.split(",") if item.strip()]
    return value


def default_database_url() -> str:
    """``junction.db`` in Junction's data directory (``<jupyter data dir>/junction``)."""
    from jupyter_core.paths import jupyter_data_dir

    path = Path(jupyter_data_dir()) / "junction" / "junction.db"
    return f"sqlite+aiosqlite:///{path.as_posix()}"


class ServerSettings(BaseModel):
    """Settings of the core: network, auth, security and which plugins run."""

    model_config = ConfigDict(
        extra="forbid", frozen=True, validate_default=True, coerce_numbers_to_str=True
    )

    ip: str = Field("localhost", description="Address to listen on ('0.0.0.0' for all).")
    port: int = Field(8888, ge=0, le=65535, description="Port to listen on; 0 picks a free one.")
    port_retries: int = Field(
        50, ge=0, description="How many following ports to try when the port is taken."
    )
    root_dir: Path = Field(
        default_factory=Path.cwd, description="Directory served by the contents API."
    )
    base_url: str = Field("/", description="URL prefix of every route, e.g. '/user/ana/'.")
    default_url: str = Field(
        "",
        description="Where '/' redirects, under base_url: '/tree' for Notebook 7, '/lab' for "
        "JupyterLab. Empty: the landing page of the enabled plugins.",
    )
    token: SecretStr | None = Field(
        None, description="Shared secret for API access; a random one is made when unset."
    )
    password: SecretStr | None = Field(
        None, description="argon2 hash of the login password (make one with 'junction password')."
    )
    no_auth: bool = Field(
        False, description="Serve without any authentication. Only for isolated setups."
    )
    open_browser: bool = Field(True, description="Open a browser tab at startup.")
    profile: str = Field(
        "full", description="Named set of plugins to run (see 'junction plugins')."
    )
    enable: list[str] = Field(
        default_factory=list, description="Plugins to run on top of the profile."
    )
    disable: list[str] = Field(default_factory=list, description="Plugins of the profile to skip.")
    allow_remote_access: bool = Field(
        False,
        description="Accept any Host header. Off by default when listening on loopback, "
        "which blocks DNS-rebinding attacks.",
    )
    local_hostnames: list[str] = Field(
        default_factory=lambda: ["localhost"],
        description="Host names accepted as local in addition to loopback addresses.",
    )
    allow_origin: str = Field(
        "", description="CORS: an origin allowed cross-site, or '*'. Empty turns CORS off."
    )
    allow_origin_pat: str = Field("", description="CORS: a regular expression of allowed origins.")
    allow_credentials: bool = Field(False, description="CORS: allow credentials cross-site.")
    allow_headers: list[str] = Field(
        default_factory=lambda: ["accept", "content-type", "authorization", "x-xsrftoken"],
        description="CORS: request headers allowed cross-site.",
    )
    allow_methods: list[str] = Field(
        default_factory=lambda: ["GET", "PUT", "POST", "PATCH", "DELETE", "OPTIONS"],
        description="CORS: methods allowed cross-site.",
    )
    expose_headers: list[str] = Field(
        default_factory=list, description="CORS: response headers exposed to scripts."
    )
    max_age: int = Field(600, ge=0, description="CORS: seconds a preflight answer may be cached.")
    disable_check_xsrf: bool = Field(
        False, description="Skip the XSRF check for cookie-authenticated requests."
    )
    cookie_secret: SecretStr | None = Field(
        None,
        description="Key that signs login cookies; when unset one is kept in the runtime dir.",
    )
    cookie_secure: bool = Field(
        False,
        description="Mark cookies Secure (HTTPS only); set it behind a TLS-terminating proxy. "
        "Always on with certfile.",
    )
    cookie_max_age_days: float = Field(
        30.0, gt=0, description="How long a login cookie stays valid."
    )
    unauthenticated_status: Literal[401, 403] = Field(
        403, description="Status for API requests without valid credentials (Jupyter uses 403)."
    )
    shutdown_timeout: float = Field(
        10.0, gt=0, description="Seconds each plugin gets to stop at shutdown."
    )
    header_timeout: float = Field(
        10.0, gt=0, description="Seconds a client gets to send its request headers."
    )
    keep_alive_timeout: float = Field(
        30.0, gt=0, description="Seconds an idle keep-alive connection stays open."
    )
    websocket_max_message_size: int = Field(
        1 << 30, gt=0, description="Largest WebSocket message accepted from a client, in bytes."
    )
    certfile: Path | None = Field(None, description="TLS certificate (PEM) to serve HTTPS.")
    keyfile: Path | None = Field(None, description="TLS private key (PEM).")
    database_url: str = Field(
        default_factory=default_database_url,
        description="Database holding plugins' state (settings, workspaces, sessions): "
        "'sqlite+aiosqlite:///PATH' or 'postgresql+asyncpg://USER:PASSWORD@HOST/DB'. "
        "Unset: an SQLite file junction.db in <jupyter data dir>/junction.",
    )
    log_level: Literal["debug", "info", "warning", "error"] = Field(
        "info", description="Logging threshold."
    )
    log_format: Literal["text", "json"] = Field(
        "text",
        description="Log lines as text, or as JSON objects one per line (time, level, logger, "
        "message, request_id, extra fields) for log collectors.",
    )
    event_log_path: Path | None = Field(
        None,
        description="Append every server event (file saves, kernels, logins...) to this "
        "JSON-lines file, written off the event loop and rotated. Unset: no file.",
    )
    event_log_max_bytes: int = Field(
        100 * 1024 * 1024, gt=0, description="Size at which the event log file is rotated."
    )
    event_log_backups: int = Field(
        5, ge=0, description="Rotated event log files kept (<path>.1 ... <path>.N)."
    )
    log_events: bool = Field(
        False, description="Also write every server event to the log (logger junction.events)."
    )
    metrics_token: SecretStr | None = Field(
        None,
        description="A token that may read /metrics and nothing else, for Prometheus. The "
        "server token works too.",
    )
    plugins: dict[str, dict[str, Any]] = Field(
        default_factory=dict,
        description="Per-plugin settings sections, e.g. [contents] in the config file.",
    )

    @field_validator("enable", "disable", "local_hostnames", "allow_headers", mode="before")
    @classmethod
    def _comma_separated(cls, value: Any) -> Any:
        return _split_list(value)

    @field_validator("allow_methods", "expose_headers", mode="before")
    @classmethod
    def _comma_separated_more(cls, value: Any) -> Any:
        return _split_list(value)

    @field_validator("base_url")
    @classmethod
    def _normalize_base_url(cls, value: str) -> str:
        return "/" + value.strip("/") + "/" if value.strip("/") else "/"

    @field_validator("default_url")
    @classmethod
    def _path_under_base_url(cls, value: str) -> str:
        if value and (not value.startswith("/") or value.startswith("//")):
            raise ValueError("default_url must be a path starting with '/', such as '/tree'")
        return value

    @field_validator("password")
    @classmethod
    def _hashed_password(cls, value: SecretStr | None) -> SecretStr | None:
        if value is not None and not value.get_secret_value().startswith("$argon2"):
            raise ValueError("password must be an argon2 hash; make one with 'junction password'")
        return value

    @field_validator("root_dir")
    @classmethod
    def _absolute_root(cls, value: Path) -> Path:
        return value.expanduser().resolve()

    @property
    def is_loopback(self) -> bool:
        """Whether the server listens on a loopback address only."""
        if self.ip in LOOPBACK_NAMES:
            return True
        try:
            return ipaddress.ip_address(self.ip).is_loopback
        except ValueError:
            return False

    @property
    def scheme(self) -> str:
        """``https`` when TLS is configured, else ``http``."""
        return "https" if self.certfile else "http"
