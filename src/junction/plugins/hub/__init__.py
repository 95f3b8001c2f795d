"""The hub plugin: Junction as a JupyterHub single-user server.

Map of the package:

- ``settings.py``: :class:`HubSettings`, every default read from ``JUPYTERHUB_*``.
- ``hubapi.py``: :class:`HubAPI`, the Hub's REST API over httpx (who a token belongs to,
  OAuth code exchange, activity reports, the startup check).
- ``identity.py``: :class:`HubIdentity`, the core's ``IDENTITY`` provider: Hub tokens and
  browser sessions, identities cached ``hub.cache_max_age`` seconds, access scopes checked.
- ``oauth.py``: :class:`HubOAuth`, the Hub's OAuth login flow (PKCE, signed state cookie).
- ``routes.py``: ``/oauth_login`` and ``/oauth_callback``, the Hub's OAuth login.
- ``service.py``, ``models.py``: the services (``HUB_IDENTITY``, ``HUB_OAUTH``), their
  errors and values.
- ``hubservice.py``: a second plugin, ``hubservice``, for the other way round: the Hub's
  OAuth client (``HUB_OAUTH``) of one shared multi-user server that is a Hub *service*, for
  the users plugin's logins with ``users.identity = "hub"`` (this plugin is not enabled then).
- ``activity.py``: activity reports to ``JUPYTERHUB_ACTIVITY_URL``.
- ``singleuser.py``: the ``junction-singleuser`` command, which maps the Hub's environment
  onto the server's settings (bind URL, base URL, root dir, default URL) and enables this
  plugin.

The core stays hub-agnostic: the plugin plugs into the identity-provider seam and keeps the
core's ``TokenHolder`` authorizer, since only users holding an access scope get an identity.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from typing import Any

import anyio

from junction.auth.authorizer import TokenHolder
from junction.auth.identity import load_cookie_secret
from junction.errors import ConfigError
from junction.plugin import Plugin, PluginContext
from junction.plugins.frontend.service import FRONTEND
from junction.plugins.hub.activity import run_activity_reports
from junction.plugins.hub.hubapi import HubAPI
from junction.plugins.hub.identity import HubIdentity, current_hub_request
from junction.plugins.hub.routes import router
from junction.plugins.hub.service import HUB_IDENTITY
from junction.plugins.hub.settings import HubSettings
from junction.services import AUTH, IDENTITY, SERVER

__all__ = ["HUB_IDENTITY", "HubSettings", "plugin"]

log = logging.getLogger("junction.hub")


@asynccontextmanager
async def lifespan(ctx: PluginContext[HubSettings]) -> AsyncIterator[None]:
    """Check the Hub answers, attach the Hub as identity provider, report activity."""
    settings = ctx.settings
    if not settings.access_scopes:
        raise ConfigError(
            "hub: no access scopes, so nobody could use this server; set "
            "JUPYTERHUB_OAUTH_ACCESS_SCOPES (the Hub sets it when it spawns this server) "
            'or hub.access_scopes, e.g. ["access:servers!user=ana"]'
        )
    if not settings.api_token.get_secret_value():
        raise ConfigError("hub: no Hub API token; set JUPYTERHUB_API_TOKEN or hub.api_token")
    auth = ctx.get(AUTH)
    async with HubAPI(settings) as api:
        await api.wait_for_hub(tries=settings.connect_tries)
        identity = HubIdentity(
            settings,
            api,
            cookie_secret=load_cookie_secret(auth.settings),
            base_url=auth.settings.base_url,
        )
        ctx.provide(IDENTITY, identity)
        ctx.provide(HUB_IDENTITY, identity)
        auth.attach(identity, TokenHolder())
        # The Hub is the way in: a token Junction made up itself would be a second
        # credential nobody asked for (one the operator set stays valid).
        generated = auth.token if auth.token_generated else None
        if generated is not None:
            auth.token, auth.token_generated = "", False
        frontend = ctx.get_optional(FRONTEND)
        if frontend is not None:
            frontend.add_page_config(lambda: _page_config(settings))
        reporter = anyio.CancelScope()
        if settings.activity_url and settings.activity_interval > 0:
            ctx.task_group.start_soon(_run_in, reporter, api, ctx)
        log.info("serving %s's server for the Hub at %s", settings.user, settings.hub_url)
        try:
            yield
        finally:
            reporter.cancel()
            auth.detach()
            if generated is not None:
                auth.token, auth.token_generated = generated, True


async def _run_in(scope: anyio.CancelScope, api: HubAPI, ctx: PluginContext[HubSettings]) -> None:
    with scope:
        await run_activity_reports(api, ctx.get(SERVER), ctx.settings.activity_interval)


async def _page_config(settings: HubSettings) -> Mapping[str, Any]:
    """The keys JupyterLab's hub extension reads (menu "Hub Control Panel", logout, sharing)."""
    current = current_hub_request.get()
    return {
        "hubUser": current.user.name if current is not None else "",
        "hubServerUser": settings.user,
        "hubPrefix": settings.hub_prefix,
        "hubHost": settings.hub_host,
        "hubServerName": settings.server_name,
        "shareUrl": settings.hub_prefix + "user-redirect",
        "token": current.token if current is not None else "",
    }


plugin = Plugin(
    name="hub",
    description="Run as a JupyterHub single-user server: logins through the Hub's OAuth, "
    "Hub tokens, activity reports (junction-singleuser).",
    settings=HubSettings,
    routers=[router],
    lifespan=lifespan,
    provides=[IDENTITY, HUB_IDENTITY],
    requires=[AUTH, SERVER],
    optional=[FRONTEND],
    public_paths=["oauth_login", "oauth_callback", "api"],
    order_hint=10,
)
