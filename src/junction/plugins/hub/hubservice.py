"""The ``hubservice`` plugin: the Hub's OAuth client of one shared multi-user server that is
a Hub *service* (``c.JupyterHub.services``).

It provides :data:`~junction.plugins.hub.service.HUB_OAUTH` to the users plugin, which keeps
the accounts and takes its logins from the Hub with ``users.identity = "hub"``
(``junction/plugins/users/hublogin.py``). Its settings (section ``[hubservice]``) are the hub
plugin's, every default read from the ``JUPYTERHUB_*`` variables a Hub-managed service gets
(``JUPYTERHUB_API_URL``, ``JUPYTERHUB_API_TOKEN``, ``JUPYTERHUB_CLIENT_ID``,
``JUPYTERHUB_OAUTH_CALLBACK_URL``, ``JUPYTERHUB_OAUTH_ACCESS_SCOPES``...). The Hub need not
be up when the server starts: logins answer 503 until it is.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from junction.auth.identity import load_cookie_secret
from junction.errors import ConfigError
from junction.plugin import Plugin, PluginContext
from junction.plugins.hub.hubapi import HubAPI
from junction.plugins.hub.oauth import HubOAuth
from junction.plugins.hub.service import HUB_OAUTH, HubUnavailable
from junction.plugins.hub.settings import HubSettings
from junction.services import AUTH

__all__ = ["plugin"]

log = logging.getLogger("junction.hub")


def _missing(settings: HubSettings) -> list[str]:
    values = (
        ("JUPYTERHUB_API_URL", settings.api_url),
        ("JUPYTERHUB_API_TOKEN", settings.api_token.get_secret_value()),
        ("JUPYTERHUB_CLIENT_ID", settings.oauth_client_id),
        ("JUPYTERHUB_OAUTH_ACCESS_SCOPES", settings.access_scopes),
    )
    return [variable for variable, value in values if not value]


@asynccontextmanager
async def lifespan(ctx: PluginContext[HubSettings]) -> AsyncIterator[None]:
    """Check the Hub's variables, say whether the Hub answers, provide the OAuth client."""
    settings = ctx.settings
    missing = _missing(settings)
    if missing:
        raise ConfigError(
            f"hubservice needs {', '.join(missing)}: the Hub sets them for a managed service "
            "(c.JupyterHub.services with a command); set them yourself for an external one "
            "(docs/jupyterhub.md)"
        )
    auth = ctx.get(AUTH)
    async with HubAPI(settings) as api:
        try:
            await api.check()
        except HubUnavailable as exc:  # logins answer 503 until it is back
            log.warning("JupyterHub at %s does not answer yet: %s", api.api_url, exc)
        else:
            log.info("logins through JupyterHub at %s", settings.hub_url)
        oauth = HubOAuth(
            api, cookie_secret=load_cookie_secret(auth.settings), base_url=auth.settings.base_url
        )
        ctx.provide(HUB_OAUTH, oauth)
        yield


plugin = Plugin(
    name="hubservice",
    description="The Hub's OAuth client of one shared multi-user server that is a JupyterHub "
    "service (the users plugin's logins with users.identity = 'hub').",
    settings=HubSettings,
    lifespan=lifespan,
    provides=[HUB_OAUTH],
    requires=[AUTH],
    order_hint=5,
)
