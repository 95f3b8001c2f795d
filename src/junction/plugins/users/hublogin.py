"""JupyterHub as the identity source of one shared multi-user Junction (a Hub *service*).

With ``users.identity = "hub"`` this plugin keeps what it always keeps (accounts, roles,
homes, sessions, API tokens) and delegates logins to the Hub's OAuth, through the
``hubservice`` plugin's :data:`~junction.plugins.hub.service.HUB_OAUTH` client, as it
delegates them to an OpenID issuer otherwise (``oidc.py``)::

    GET /login/hub?next=…    the Hub answers? (else 503); redirect to the Hub's
                             /hub/api/oauth2/authorize (PKCE, signed state cookie)
    GET /oauth_callback      check the state (403), exchange the code, GET {api}/user: name,
                             groups, admin, scopes; refuse (403) users without one of the
                             service's access scopes or outside allowed_users/groups; create
                             or update the account (source "hub", groups mapped to roles);
                             open a session

Sessions keep the user's Hub token; every ``users.oidc_recheck_seconds`` a session's next
request shows it to the Hub again: a token the Hub revoked (logout at the Hub) or a user who
lost access ends the session; a Hub that does not answer keeps it, so open sessions outlive
a Hub outage until they expire.
"""

from __future__ import annotations

import logging
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request
from fastapi.responses import RedirectResponse, Response

from junction.auth.identity import User
from junction.auth.routes import safe_next, start_session
from junction.errors import Forbidden
from junction.plugin import ServiceKey
from junction.plugins.hub.service import HubOAuthService, HubUnavailable
from junction.plugins.users.directory import UserDirectory
from junction.plugins.users.settings import UsersSettings
from junction.plugins.users.store import SessionRow
from junction.services import AUTH

__all__ = ["HUB_LOGIN", "HubServiceLogin", "NotAllowed", "router"]

log = logging.getLogger("junction.users")


class NotAllowed(Forbidden):
    """The Hub vouches for this user, but they may not use this service."""

    def __init__(self, message: str) -> None:
        super().__init__(message, reason="LoginRefused")


class HubServiceLogin:
    """Logins of this plugin through the Hub's OAuth: the identity source (``recheck``,
    ``logout_url``) and the account mapping."""

    label = "Log in with JupyterHub"
    path = "login/hub"

    def __init__(
        self, users: UsersSettings, directory: UserDirectory, oauth: HubOAuthService
    ) -> None:
        self.users = users
        self.directory = directory
        self.oauth = oauth

    # -- accounts ----------------------------------------------------------------------------

    def roles_of(self, groups: list[str]) -> list[str] | None:
        """The roles ``users.hub_group_roles`` gives members of ``groups`` on top of
        ``users.default_roles``; None when no mapping is configured (roles stay as set)."""
        mapping = self.users.hub_group_roles
        if not mapping:
            return None
        roles = list(self.users.default_roles)
        for group in groups:
            roles += [role for role in mapping.get(group, []) if role not in roles]
        return roles

    def is_admin(self, model: dict[str, Any], groups: list[str]) -> bool:
        """Whether the Hub's user is an administrator here (``users.hub_admin_groups``, or a
        Hub admin with ``users.hub_admins``)."""
        if set(groups) & set(self.users.hub_admin_groups):
            return True
        return self.users.hub_admins and model.get("admin") is True

    def has_access(self, model: dict[str, Any]) -> bool:
        """Whether the Hub's model holds one of the service's access scopes."""
        scopes = model.get("scopes")
        if not isinstance(scopes, list):
            return False
        return self.oauth.has_access(str(s) for s in scopes)

    def allowed(self, model: dict[str, Any]) -> bool:
        """Whether ``users.allowed_users`` / ``users.allowed_groups`` let the Hub's user in
        (both empty: everyone with access)."""
        if not self.users.allowed_users and not self.users.allowed_groups:
            return True
        groups = set(_groups(model))
        return model.get("name") in self.users.allowed_users or bool(
            groups & set(self.users.allowed_groups)
        )

    async def account_for(self, model: dict[str, Any] | None) -> User:
        """Create or update the account of the user the Hub describes; raises
        :class:`NotAllowed` for users without access, or disabled here."""
        name = model.get("name") if model is not None else None
        if model is None or not isinstance(name, str) or model.get("kind", "user") != "user":
            raise NotAllowed("JupyterHub did not say who logged in")
        if not self.has_access(model):
            log.info("Hub user %s has no access scope for this service", name)
            raise NotAllowed(f"{name} may not use this server (no access scope)")
        if not self.allowed(model):
            log.info("Hub user %s is not in users.allowed_users or allowed_groups", name)
            raise NotAllowed(f"{name} may not use this server")
        groups = _groups(model)
        account = await self.directory.sync_external(
            name,
            display_name=None,
            avatar_url=None,
            groups=groups,
            admin=self.is_admin(model, groups),
            source="hub",
        )
        roles = self.roles_of(groups)
        # Compared as sets: the Hub's groups (and so these roles) come in no fixed order,
        # and writing roles moves the credentials generation, emptying every server's cache.
        if roles is not None and sorted(set(roles)) != sorted(set(account.roles)):
            account = await self.directory.set_roles(name, roles=roles)
        if not account.enabled:
            raise NotAllowed(f"The account {name} is disabled")
        return account.user()

    # -- the identity source -----------------------------------------------------------------

    async def recheck(self, row: SessionRow) -> tuple[bool | None, dict[str, str]]:
        """Whether the Hub still vouches for a session's token and the user still has access
        (None: the Hub does not answer, keep the session). When they do, their groups, admin
        flag and mapped roles are updated to what the Hub says now."""
        try:
            model = await self.oauth.user_model(row.access_token or "")
        except HubUnavailable as exc:
            log.info("cannot recheck a session with JupyterHub: %s", exc)
            return None, {}
        if model is None or not self.has_access(model) or not self.allowed(model):
            return False, {}
        groups = _groups(model)
        await self.directory.refresh_external(
            row.account_id,
            groups=groups,
            admin=self.is_admin(model, groups),
            roles=self.roles_of(groups),
        )
        return True, {}

    def logout_url(self, row: SessionRow) -> str | None:
        """Logging out here continues at the Hub's logout page, else the Hub would log the
        browser straight back in."""
        return self.oauth.logout_url


def _groups(model: dict[str, Any]) -> list[str]:
    groups = model.get("groups")
    return [str(g) for g in groups] if isinstance(groups, list) else []


HUB_LOGIN: ServiceKey[HubServiceLogin] = ServiceKey("users.hub")
"""The Hub login of the users plugin, provided when ``users.identity = "hub"``."""

router = APIRouter(tags=["users"])

_FAILURES: dict[int | str, dict[str, Any]] = {
    403: {
        "description": "Hub logins are off, the state is not this browser's, or the user "
        "may not use this server"
    },
    503: {"description": "JupyterHub cannot be reached"},
}


def _login(request: Request) -> HubServiceLogin:
    login = request.app.state.services.get_optional(HUB_LOGIN)
    if login is None:
        raise Forbidden("JupyterHub logins are not configured (users.identity = 'hub')")
    return login  # type: ignore[no-any-return]  # registry values are typed by their key


@router.get(
    "/login/hub",
    include_in_schema=False,
    response_class=RedirectResponse,
    status_code=302,
    responses=_FAILURES,
)
async def hub_login(request: Request, next: Annotated[str | None, Query()] = None) -> Response:
    """Leave for the Hub's authorization page."""
    login = _login(request)
    auth = request.app.state.services.get(AUTH)
    secure = auth.settings.certfile is not None or auth.settings.cookie_secure
    return await login.oauth.begin(safe_next(next, auth.settings.base_url), secure=secure)


@router.get(
    "/oauth_callback",
    include_in_schema=False,
    response_class=RedirectResponse,
    status_code=302,
    responses=_FAILURES,
)
async def hub_callback(
    request: Request,
    code: Annotated[str, Query()] = "",
    state: Annotated[str, Query()] = "",
) -> Response:
    """Come back from the Hub: finish the login, update the account, open a session."""
    login = _login(request)
    done = await login.oauth.finish(request, code=code, state=state)
    user = await login.account_for(done.model)
    response = await start_session(request, user, done.next_url, access_token=done.token)
    login.oauth.clear_state(response)
    return response
