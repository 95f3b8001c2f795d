"""The Hub's OAuth login of a single-user server: ``/oauth_login`` sends the browser to the
Hub, ``/oauth_callback`` brings it back with a code, which becomes a browser session.

    GET /oauth_login?next=…   the Hub answers? (else 503) state and PKCE verifier in a signed
                              cookie, redirect to {hub}/api/oauth2/authorize
    GET /oauth_callback       check state (403), exchange the code, ask {api}/user who it is,
                              refuse (403) users without an access scope, open a session and
                              go to ``next``

The flow itself is :class:`~junction.plugins.hub.oauth.HubOAuth`.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Request
from fastapi.responses import RedirectResponse, Response

from junction.auth.identity import Authenticator
from junction.auth.routes import safe_next, start_session
from junction.errors import Forbidden
from junction.plugin import use
from junction.plugins.hub.identity import HubIdentity
from junction.plugins.hub.service import HUB_IDENTITY
from junction.services import AUTH

__all__ = ["router"]

router = APIRouter(tags=["hub"])


@router.get("/oauth_login", response_class=RedirectResponse, status_code=302)
async def oauth_login(
    identity: Annotated[HubIdentity, use(HUB_IDENTITY)],
    auth: Annotated[Authenticator, use(AUTH)],
    next: Annotated[str | None, Query()] = None,
) -> Response:
    """Start a login at the Hub (authorization code with PKCE and a state cookie)."""
    secure = auth.settings.certfile is not None or auth.settings.cookie_secure
    return await identity.oauth.begin(safe_next(next, auth.settings.base_url), secure=secure)


@router.get("/oauth_callback", response_class=RedirectResponse, status_code=302)
async def oauth_callback(
    request: Request,
    identity: Annotated[HubIdentity, use(HUB_IDENTITY)],
    code: Annotated[str, Query()] = "",
    state: Annotated[str, Query()] = "",
) -> Response:
    """Finish a Hub login: check the state, exchange the code, open a browser session."""
    login = await identity.oauth.finish(request, code=code, state=state)
    user = identity.user_of(login.model) if login.model is not None else None
    if user is None:
        name = login.model.get("name") if login.model is not None else "this user"
        raise Forbidden(f"{name} may not use this server")
    identity.remember(login.token, user)
    response = await start_session(request, user, login.next_url, hub_token=login.token)
    identity.oauth.clear_state(response)
    return response
