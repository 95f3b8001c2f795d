"""The Hub's OAuth login: ``/oauth_login`` sends the browser to the Hub, ``/oauth_callback``
brings it back with a code, which becomes a browser session.

    GET /oauth_login?next=…   make a state and a PKCE verifier, keep them and ``next`` in a
                              signed HttpOnly cookie (10 minutes; nothing is kept on the
                              server, so a flood of logins fills nothing), redirect to
                              {hub}/api/oauth2/authorize
    GET /oauth_callback       check state (query = signed cookie), exchange the code at
                              {api}/oauth2/token (this server's Hub token is the client
                              secret), ask {api}/user who it is, refuse (403) users without an
                              access scope, open a session and go to ``next``
"""

from __future__ import annotations

import base64
import hashlib
import secrets
from typing import Annotated

from fastapi import APIRouter, Query, Request
from fastapi.responses import RedirectResponse, Response
from itsdangerous import BadSignature

from junction.auth.identity import Authenticator
from junction.auth.routes import safe_next, start_session
from junction.errors import BadRequest, Forbidden, ServiceUnavailable
from junction.plugin import use
from junction.plugins.hub.hubapi import HubUnavailable
from junction.plugins.hub.identity import HubIdentity
from junction.plugins.hub.service import HUB_IDENTITY
from junction.services import AUTH

__all__ = ["router"]

router = APIRouter(tags=["hub"])

STATE_MAX_AGE = 600
_MAX_NEXT = 2048
"""Longer ``next`` URLs are dropped (the browser goes to the base URL): cookies hold ~4 KB."""


def _state_cookie(client_id: str) -> str:
    return f"{client_id or 'junction'}-oauth-state"


def _redirect_uri(request: Request, identity: HubIdentity, base_url: str) -> str:
    return identity.settings.oauth_redirect_uri or f"{base_url}oauth_callback"


@router.get("/oauth_login", response_class=RedirectResponse, status_code=302)
async def oauth_login(
    request: Request,
    identity: Annotated[HubIdentity, use(HUB_IDENTITY)],
    auth: Annotated[Authenticator, use(AUTH)],
    next: Annotated[str | None, Query()] = None,
) -> Response:
    """Start a login at the Hub (authorization code with PKCE and a state cookie)."""
    base = auth.settings.base_url
    state = secrets.token_urlsafe(24)
    verifier = secrets.token_urlsafe(48)
    challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest())
    next_url = safe_next(next, base)
    if len(next_url) > _MAX_NEXT:
        next_url = base
    signed = identity.state_signer.dumps({"s": state, "v": verifier, "n": next_url})
    location = identity.api.authorize_url(
        redirect_uri=_redirect_uri(request, identity, base),
        state=state,
        code_challenge=challenge.decode().rstrip("="),
    )
    response = RedirectResponse(location, status_code=302)
    response.set_cookie(
        _state_cookie(identity.settings.oauth_client_id),
        signed,
        max_age=STATE_MAX_AGE,
        path=base,
        httponly=True,
        samesite="lax",
        secure=auth.settings.certfile is not None or auth.settings.cookie_secure,
    )
    return response


@router.get("/oauth_callback", response_class=RedirectResponse, status_code=302)
async def oauth_callback(
    request: Request,
    identity: Annotated[HubIdentity, use(HUB_IDENTITY)],
    auth: Annotated[Authenticator, use(AUTH)],
    code: Annotated[str, Query()] = "",
    state: Annotated[str, Query()] = "",
) -> Response:
    """Finish a Hub login: check the state, exchange the code, open a browser session."""
    cookie_name = _state_cookie(identity.settings.oauth_client_id)
    cookie = request.cookies.get(cookie_name, "")
    if not code or not state:
        raise BadRequest("the Hub's callback lacks code or state")
    pending = _read_state(identity, cookie)
    if pending is None or not secrets.compare_digest(pending[0].encode(), state.encode()):
        raise Forbidden("OAuth state does not match; log in again")
    _, verifier, next_url = pending
    base = auth.settings.base_url
    try:
        token = await identity.api.token_for_code(
            code, verifier, _redirect_uri(request, identity, base)
        )
        model = await identity.api.user_model(token)
    except HubUnavailable as exc:
        raise ServiceUnavailable(f"the Hub did not answer: {exc}") from exc
    except ValueError as exc:
        raise Forbidden(str(exc)) from exc
    user = identity.user_of(model) if model is not None else None
    if user is None:
        name = model.get("name") if model is not None else "this user"
        raise Forbidden(f"{name} may not use this server")
    response = await start_session(request, user, next_url, hub_token=token)
    response.delete_cookie(cookie_name, path=base)
    return response


def _read_state(identity: HubIdentity, cookie: str) -> tuple[str, str, str] | None:
    """The state, PKCE verifier and ``next`` of a state cookie (None: absent, forged, expired)."""
    if not cookie:
        return None
    try:
        data = identity.state_signer.loads(cookie, max_age=STATE_MAX_AGE)
    except BadSignature:
        return None
    if not isinstance(data, dict):
        return None
    state, verifier, next_url = data.get("s"), data.get("v"), data.get("n")
    if not (isinstance(state, str) and isinstance(verifier, str) and isinstance(next_url, str)):
        return None
    if not state or not verifier:
        return None
    return state, verifier, next_url
