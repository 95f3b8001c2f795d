"""The users plugin: many people on one server, each with their own logins and objects.

Map of the package:

- ``service.py``: the :class:`UsersService` Protocol, the :data:`USERS` key, the errors.
- ``directory.py``: :class:`UserDirectory`, the service and the core's ``IDENTITY``
  provider: accounts, password checks, browser sessions and API tokens, cached in memory.
- ``credentials.py``: token and session id formats and their digests.
- ``schema.py`` and ``migrations/``: the tables (``users_accounts``, ``users_sessions``,
  ``users_tokens``) and their Alembic revisions.
- ``store.py``: the queries.
- ``oidc.py``: OpenID Connect logins (authorization code with PKCE, through authlib).
- ``hublogin.py``: JupyterHub logins instead (``users.identity = "hub"``), through the
  ``hubservice`` plugin's OAuth client. Either is an ``IdentitySource`` (``service.py``).
- ``routes.py``, ``models.py``: the ``/api/users`` admin and self-service API;
  ``page.py``: the ``/users`` administration page over it.
- ``homes.py``: :class:`Homes`, per-user home folders and shared folders, provided as the
  contents plugin's ``CONTENTS_ACCESS``; ``sharing.py``: the ``/api/users/shares`` routes.
- ``commands.py``: ``junction users ...``, the same against the configured database.
- ``settings.py``: :class:`UsersSettings`.

Permissions come from the core's :class:`~junction.auth.authorizer.RoleAuthorizer`, which
this plugin provides as ``AUTHORIZER`` and attaches to the core's authenticator.
"""

from __future__ import annotations

import getpass
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import anyio

from junction.auth.authorizer import RoleAuthorizer
from junction.auth.limits import LIMITS, UserLimits
from junction.childenv import set_account_resolver
from junction.database import PluginTables
from junction.errors import ConfigError
from junction.events import EVENTS
from junction.plugin import Plugin, PluginContext
from junction.plugins.contents.service import CONTENTS_ACCESS
from junction.plugins.hub.service import HUB_OAUTH
from junction.plugins.users.directory import UserDirectory
from junction.plugins.users.homes import HOMES, Homes
from junction.plugins.users.hublogin import HUB_LOGIN, HubServiceLogin
from junction.plugins.users.hublogin import router as hub_router
from junction.plugins.users.oidc import OIDC
from junction.plugins.users.oidc import router as oidc_router
from junction.plugins.users.page import router as page_router
from junction.plugins.users.routes import router
from junction.plugins.users.schema import metadata
from junction.plugins.users.service import USERS, UsersService
from junction.plugins.users.settings import UsersSettings
from junction.plugins.users.sharing import router as sharing_router
from junction.plugins.users.unixaccounts import UnixAccounts, check_root
from junction.services import AUTH, AUTHORIZER, DATABASE, IDENTITY

__all__ = ["USERS", "UsersService", "plugin"]

log = logging.getLogger("junction.users")


@asynccontextmanager
async def lifespan(ctx: PluginContext[UsersSettings]) -> AsyncIterator[None]:
    """Provide the directory as ``USERS`` and ``IDENTITY``, the authorizer as ``AUTHORIZER``,
    and switch the core to multi-user mode until the server stops."""
    settings = ctx.settings
    directory = UserDirectory(ctx.get(DATABASE), settings)
    directory.events = ctx.get_optional(EVENTS)
    authorizer = RoleAuthorizer()
    auth = ctx.get(AUTH)
    homes = Homes(ctx.server.root_dir, settings.home_template, auth, ctx.get(DATABASE))
    await homes.load()
    directory.on_generation(homes.load)
    async with _identity_source(ctx, directory), _unix_accounts(ctx, homes):
        ctx.provide(HOMES, homes)
        limits = UserLimits(
            auth,
            kernels=settings.max_kernels_per_user,
            terminals=settings.max_terminals_per_user,
        )
        ctx.provide(LIMITS, limits)
        ctx.provide(CONTENTS_ACCESS, homes)
        ctx.provide(USERS, directory)
        ctx.provide(IDENTITY, directory)
        ctx.provide(AUTHORIZER, authorizer)
        auth.attach(directory, authorizer)
        if not settings.unix_accounts:
            log.warning(
                "multi-user mode: every kernel and terminal runs as this server's Unix account "
                "(%s); users are kept apart by Junction's permission checks, not by the operating "
                "system, so any user's code can read what that account can read",
                _unix_account(),
            )
        flusher = anyio.CancelScope()
        ctx.task_group.start_soon(_run_in, flusher, directory)
        try:
            yield
        finally:
            flusher.cancel()
            auth.detach()
            with anyio.CancelScope(shield=True):
                try:
                    await directory.flush()
                except Exception:
                    log.exception("could not record session and token activity")


async def _run_in(scope: anyio.CancelScope, directory: UserDirectory) -> None:
    with scope:
        await directory.run()


@asynccontextmanager
async def _identity_source(
    ctx: PluginContext[UsersSettings], directory: UserDirectory
) -> AsyncIterator[None]:
    """Set up logins from JupyterHub (``users.identity = "hub"``) or from an OpenID issuer
    (when ``users.oidc_issuer`` is configured)."""
    settings = ctx.settings
    if settings.identity == "hub":
        if settings.oidc_enabled:
            raise ConfigError(
                "users: identity = 'hub' and oidc_issuer are both set; logins come from one "
                "source, so unset users.oidc_issuer or set users.identity = 'oidc'"
            )
        oauth = ctx.get_optional(HUB_OAUTH)
        if oauth is None:
            raise ConfigError(
                "users: identity = 'hub' needs the hubservice plugin (the Hub's OAuth "
                'client); add enable = ["hubservice"]'
            )
        hub = HubServiceLogin(settings, directory, oauth)
        forward = not settings.password_login
        directory.attach_source(hub, label=hub.label, path=hub.path, forward=forward)
        ctx.provide(HUB_LOGIN, hub)
        yield
        return
    if not settings.oidc_enabled:
        yield
        return
    from junction.plugins.users.oidc import OpenIDLogin

    async with OpenIDLogin(settings, directory, base_url=ctx.server.base_url) as login:
        directory.attach_source(login, label=settings.oidc_label, path="login/oidc")
        ctx.provide(OIDC, login)
        yield


@asynccontextmanager
async def _unix_accounts(ctx: PluginContext[UsersSettings], homes: Homes) -> AsyncIterator[None]:
    """Run users' kernels and terminals as their own Unix accounts (``users.unix_accounts``)."""
    if not ctx.settings.unix_accounts:
        yield
        return
    check_root()
    async with UnixAccounts(ctx.settings, homes, ctx.get(AUTH)) as accounts:
        set_account_resolver(accounts.resolve)
        log.warning(
            "multi-user mode with per-user Unix accounts: each user's kernels and terminals "
            "run as the account named by users.unix_account_template"
        )
        try:
            yield
        finally:
            set_account_resolver(None)


def _unix_account() -> str:
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return "unknown"


plugin = Plugin(
    name="users",
    description="Many users on one server: accounts, logins (password, OpenID Connect, "
    "JupyterHub), browser sessions, API tokens, roles (/api/users).",
    settings=UsersSettings,
    routers=[sharing_router, router, oidc_router, hub_router, page_router],
    lifespan=lifespan,
    provides=[USERS, IDENTITY, AUTHORIZER, OIDC, HUB_LOGIN, HOMES, CONTENTS_ACCESS, LIMITS],
    public_paths=["login/oidc", "oauth/callback", "login/hub", "oauth_callback"],
    requires=[AUTH, DATABASE],
    optional=[EVENTS, HUB_OAUTH],
    tables=PluginTables(metadata, Path(__file__).parent / "migrations"),
    order_hint=10,
)
