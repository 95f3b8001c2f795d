"""The Hub's OAuth login flow, shared by the single-user server and the shared service.

    begin    check the Hub answers (else 503); make a state and a PKCE verifier, keep them
             and ``next`` in a signed HttpOnly cookie ``<client id>-oauth-state`` (10
             minutes; nothing is kept on the server, so a flood of logins fills nothing),
             redirect to {hub}/api/oauth2/authorize
    finish   check the state (query = signed cookie, else 403), exchange the code at
             {api}/oauth2/token (the Hub token is the client secret), ask {api}/user who
             it is; a Hub that does not answer is a 503

Used by the hub plugin's ``/oauth_login`` and ``/oauth_callback`` (one server per user) and
by the users plugin's ``/login/hub`` and ``/oauth_callback`` (``users.identity = "hub"``).
"""

from __future__ import annotations

import base64
import hashlib
import secrets
from collections.abc import Iterable
from typing import Any

from fastapi import Request
from fastapi.responses import RedirectResponse, Response
from itsdangerous import BadSignature, URLSafeTimedSerializer

from junction.errors import BadRequest, Forbidden, ServiceUnavailable
from junction.plugins.hub.hubapi import HubAPI, has_access
from junction.plugins.hub.models import HubLogin
from junction.plugins.hub.service import HubUnavailable

__all__ = ["STATE_MAX_AGE", "HubOAuth", "OAuthStateMismatch"]

STATE_MAX_AGE = 600
_MAX_NEXT = 2048
"""Longer ``next`` URLs are dropped (the browser goes to the base URL): cookies hold ~4 KB."""


class OAuthStateMismatch(Forbidden):
    """The callback's state is not the one this browser's login started with."""

    def __init__(self) -> None:
        super().__init__("OAuth state does not match; log in again", reason="OAuthStateMismatch")


class HubOAuth:
    """Authorization code logins at the Hub for one OAuth client (this server or service);
    the :class:`~junction.plugins.hub.service.HubOAuthService`."""

    def __init__(self, api: HubAPI, *, cookie_secret: bytes, base_url: str) -> None:
        self.api = api
        self.base_url = base_url
        self.signer = URLSafeTimedSerializer(cookie_secret, salt="junction-hub-oauth")
        """Signs the state cookie (state, PKCE verifier, ``next``) of a login."""

    @property
    def state_cookie(self) -> str:
        """The state cookie's name, jupyterhub's ``<client id>-oauth-state``."""
        return f"{self.api.settings.oauth_client_id or 'junction'}-oauth-state"

    @property
    def redirect_uri(self) -> str:
        """The callback registered at the Hub (``JUPYTERHUB_OAUTH_CALLBACK_URL``)."""
        return self.api.settings.oauth_redirect_uri or f"{self.base_url}oauth_callback"

    async def begin(self, next_url: str, *, secure: bool) -> Response:
        """Send the browser to the Hub's authorization page; ``next_url`` is already safe.

        Asks the Hub first, so a Hub that is down is a clear 503 here
        (:class:`ServiceUnavailable`) rather than a browser error page at the Hub's address.
        """
        try:
            await self.api.check()
        except HubUnavailable as exc:
            raise ServiceUnavailable(
                f"JupyterHub cannot be reached ({exc}); try again later"
            ) from exc
        state = secrets.token_urlsafe(24)
        verifier = secrets.token_urlsafe(48)
        challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest())
        if len(next_url) > _MAX_NEXT:
            next_url = self.base_url
        signed = self.signer.dumps({"s": state, "v": verifier, "n": next_url})
        location = self.api.authorize_url(
            redirect_uri=self.redirect_uri,
            state=state,
            code_challenge=challenge.decode().rstrip("="),
        )
        response = RedirectResponse(location, status_code=302)
        response.set_cookie(
            self.state_cookie,
            signed,
            max_age=STATE_MAX_AGE,
            path=self.base_url,
            httponly=True,
            samesite="lax",
            secure=secure,
        )
        return response

    async def finish(self, request: Request, *, code: str, state: str) -> HubLogin:
        """Check the callback's state, exchange its code, ask the Hub who logged in.

        Raises :class:`BadRequest` without code or state, :class:`Forbidden` for a state that
        is not this browser's or a code the Hub refuses, :class:`ServiceUnavailable` when
        the Hub does not answer.
        """
        if not code or not state:
            raise BadRequest("the Hub's callback lacks code or state")
        pending = self.read_state(request.cookies.get(self.state_cookie, ""))
        if pending is None or not secrets.compare_digest(pending[0].encode(), state.encode()):
            raise OAuthStateMismatch()
        _, verifier, next_url = pending
        try:
            token = await self.api.token_for_code(code, verifier, self.redirect_uri)
            model = await self.api.user_model(token)
        except HubUnavailable as exc:
            raise ServiceUnavailable(f"JupyterHub did not answer: {exc}; try again") from exc
        except ValueError as exc:
            raise Forbidden(str(exc)) from exc
        return HubLogin(token, model, next_url)

    def read_state(self, cookie: str) -> tuple[str, str, str] | None:
        """The state, PKCE verifier and ``next`` of a state cookie (None: absent, forged,
        expired)."""
        if not cookie:
            return None
        try:
            data = self.signer.loads(cookie, max_age=STATE_MAX_AGE)
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

    async def user_model(self, token: str) -> dict[str, Any] | None:
        """The Hub's model of a token's owner (None: refused); raises ``HubUnavailable``."""
        return await self.api.user_model(token)

    def has_access(self, scopes: Iterable[str]) -> bool:
        """Whether ``scopes`` grant one of this client's access scopes."""
        return has_access(self.api.settings.access_scopes, scopes)

    @property
    def logout_url(self) -> str:
        """The Hub's logout page."""
        return self.api.settings.hub_url + "logout"

    def clear_state(self, response: Response) -> None:
        """Drop the state cookie once a login finished."""
        response.delete_cookie(self.state_cookie, path=self.base_url)
