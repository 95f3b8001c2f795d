"""Settings of the hub plugin (section ``[hub]``), read from the Hub's environment.

The Hub passes everything a single-user server needs in ``JUPYTERHUB_*`` variables; each
setting defaults to its variable, so a spawned server needs no configuration at all. The names
are those of jupyterhub's ``HubOAuth`` where it has one (``api_url``, ``api_token``,
``oauth_client_id``, ``oauth_redirect_uri``, ``access_scopes``, ``cache_max_age``).
"""

from __future__ import annotations

import json
import os
from typing import Any

from pydantic import Field, SecretStr, field_validator

from junction.plugin import PluginSettings

__all__ = ["HubSettings"]


def _env(name: str, default: str = "") -> Any:
    return lambda: os.environ.get(name, default)


def _env_scopes() -> list[str]:
    raw = os.environ.get("JUPYTERHUB_OAUTH_ACCESS_SCOPES") or os.environ.get(
        "JUPYTERHUB_OAUTH_SCOPES", ""
    )
    scopes = json.loads(raw) if raw else []
    return [str(scope) for scope in scopes]


def _env_secret() -> SecretStr:
    return SecretStr(
        os.environ.get("JUPYTERHUB_API_TOKEN") or os.environ.get("JPY_API_TOKEN") or ""
    )


def _env_interval() -> float:
    return float(os.environ.get("JUPYTERHUB_ACTIVITY_INTERVAL") or 300)


class HubSettings(PluginSettings):
    """How to reach the Hub and whom to let in; every default comes from ``JUPYTERHUB_*``."""

    api_url: str = Field(
        default_factory=_env("JUPYTERHUB_API_URL"),
        description="The Hub's REST API, e.g. http://127.0.0.1:8081/hub/api ($JUPYTERHUB_API_URL).",
    )
    api_token: SecretStr = Field(
        default_factory=_env_secret,
        description="This server's Hub token, also its OAuth client secret "
        "($JUPYTERHUB_API_TOKEN).",
    )
    base_url: str = Field(
        default_factory=_env("JUPYTERHUB_BASE_URL", "/"),
        description="The Hub's public base URL ($JUPYTERHUB_BASE_URL); hub_prefix is under it.",
    )
    hub_host: str = Field(
        default_factory=_env("JUPYTERHUB_HOST"),
        description="The Hub's public origin when it differs from this server's "
        "($JUPYTERHUB_HOST; empty: same origin).",
    )
    user: str = Field(
        default_factory=_env("JUPYTERHUB_USER"),
        description="The user owning this server ($JUPYTERHUB_USER).",
    )
    server_name: str = Field(
        default_factory=_env("JUPYTERHUB_SERVER_NAME"),
        description="This server's name, '' for the default server ($JUPYTERHUB_SERVER_NAME).",
    )
    oauth_client_id: str = Field(
        default_factory=_env("JUPYTERHUB_CLIENT_ID"),
        description="This server's OAuth client id ($JUPYTERHUB_CLIENT_ID).",
    )
    oauth_redirect_uri: str = Field(
        default_factory=_env("JUPYTERHUB_OAUTH_CALLBACK_URL"),
        description="The registered OAuth callback, e.g. /user/ana/oauth_callback "
        "($JUPYTERHUB_OAUTH_CALLBACK_URL; empty: <base_url>oauth_callback).",
    )
    access_scopes: list[str] = Field(
        default_factory=_env_scopes,
        description="A user needs one of these Hub scopes to use this server "
        "($JUPYTERHUB_OAUTH_ACCESS_SCOPES, JSON list).",
    )
    activity_url: str = Field(
        default_factory=_env("JUPYTERHUB_ACTIVITY_URL"),
        description="Where activity is reported ($JUPYTERHUB_ACTIVITY_URL; empty: never).",
    )
    activity_interval: float = Field(
        default_factory=_env_interval,
        ge=0,
        description="Seconds between activity reports ($JUPYTERHUB_ACTIVITY_INTERVAL; 0: never).",
    )
    cache_max_age: float = Field(
        300.0, ge=0, description="Seconds an identity the Hub vouched for is trusted."
    )
    connect_tries: int = Field(
        5, ge=1, description="Tries to reach the Hub's API at startup before giving up."
    )
    request_timeout: float = Field(
        10.0, gt=0, description="Seconds to wait for the Hub's API on each request."
    )
    ssl_keyfile: str = Field(
        default_factory=_env("JUPYTERHUB_SSL_KEYFILE"),
        description="Private key (PEM) of this server's internal TLS certificate "
        "($JUPYTERHUB_SSL_KEYFILE, set with c.JupyterHub.internal_ssl).",
    )
    ssl_certfile: str = Field(
        default_factory=_env("JUPYTERHUB_SSL_CERTFILE"),
        description="This server's internal TLS certificate (PEM), shown to the Hub's API and "
        "served to the proxy ($JUPYTERHUB_SSL_CERTFILE).",
    )
    ssl_client_ca: str = Field(
        default_factory=_env("JUPYTERHUB_SSL_CLIENT_CA"),
        description="Certificate authority (PEM) that signs the Hub's and the proxy's internal "
        "certificates ($JUPYTERHUB_SSL_CLIENT_CA).",
    )

    @field_validator("base_url")
    @classmethod
    def _trailing_slash(cls, value: str) -> str:
        return value if value.endswith("/") else value + "/"

    @property
    def hub_prefix(self) -> str:
        """The Hub's own pages, e.g. ``/hub/`` (``JUPYTERHUB_BASE_URL`` + ``hub/``)."""
        return self.base_url + "hub/"

    @property
    def hub_url(self) -> str:
        """Absolute or origin-relative URL of the Hub's pages, for browsers."""
        return self.hub_host.rstrip("/") + self.hub_prefix
