"""OpenID Connect logins: authorization code flow with PKCE, state and nonce, via authlib.

::

    GET /login/oidc?next=…   make state, nonce and a PKCE verifier; remember them here and
                             the state in a short-lived cookie; redirect to the issuer
    GET /oauth/callback      the issuer sends the browser back with ?code&state(&iss):
                             check state (query = cookie = remembered), iss, exchange the code
                             (with the verifier), validate the ID token (signature by the
                             issuer's JWKS, iss, aud, exp, nonce), read userinfo, check the
                             allow-lists, create or update the account, open a session
    GET /logout              (core) ends the session and continues at the issuer's
                             end_session_endpoint (RP-initiated logout)

The discovery document and the JWKS are fetched on first use (and the JWKS again when a token
is signed with an unknown key), so the server starts while the issuer is down. Pending logins
live in this process for :data:`PENDING_SECONDS`: several servers behind one address need
sticky sessions for the login round trip.

Sessions opened here keep the access token; every ``oidc_recheck_seconds`` the next request
after the cache expires asks the issuer's userinfo again (and, when that has no groups claim,
for a refreshed ID token), and a user who left the allowed groups (or whose token the issuer
refuses) is logged out.
"""

from __future__ import annotations

import base64
import json
import logging
import secrets
import time
from dataclasses import dataclass, field
from typing import Annotated, Any
from urllib.parse import urlencode

import anyio
import httpx2
from authlib.integrations.base_client import OAuthError
from authlib.integrations.httpx_client import AsyncOAuth2Client
from authlib.oauth2.rfc6749 import OAuth2Error
from fastapi import APIRouter, Query, Request
from fastapi.responses import RedirectResponse, Response
from joserfc import jwt
from joserfc.errors import JoseError
from joserfc.jwk import KeySet

from junction.auth.identity import User
from junction.auth.routes import safe_next, start_session
from junction.errors import Forbidden, ServiceUnavailable
from junction.plugin import ServiceKey
from junction.plugins.users.directory import UserDirectory
from junction.plugins.users.settings import UsersSettings
from junction.plugins.users.store import SessionRow
from junction.services import AUTH

__all__ = ["OIDC", "PENDING_SECONDS", "LoginRefused", "OpenIDLogin", "router"]

log = logging.getLogger("junction.users")

PENDING_SECONDS = 600.0
"""How long a login may take between leaving for the issuer and coming back."""
STATE_COOKIE = "junction-oidc-state"
_PENDING_LIMIT = 1000
_LEEWAY = 120  # seconds of clock skew tolerated on exp/iat, as authlib's default


class LoginRefused(Forbidden):
    """The OpenID login failed a check (state, issuer, token, allow-list)."""

    def __init__(self, message: str) -> None:
        super().__init__(message, reason="LoginRefused")


@dataclass(frozen=True)
class _Pending:
    verifier: str
    nonce: str
    next_url: str
    redirect_uri: str
    started: float


class OpenIDLogin:
    """One configured issuer: starts logins, finishes them, re-checks sessions."""

    def __init__(self, settings: UsersSettings, directory: UserDirectory, *, base_url: str) -> None:
        self.settings = settings
        self.directory = directory
        self.base_url = base_url
        self.issuer = settings.oidc_issuer.rstrip("/")
        self._http: httpx2.AsyncClient | None = None
        self._metadata: dict[str, Any] | None = None
        self._keys: KeySet | None = None
        self._pending: dict[str, _Pending] = {}
        self._rechecks: dict[str, _Flight] = {}
        self._origin = ""

    async def __aenter__(self) -> OpenIDLogin:
        self._http = httpx2.AsyncClient(timeout=10.0)
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        if self._http is not None:
            await self._http.aclose()

    @property
    def http(self) -> httpx2.AsyncClient:
        """The HTTP client used for discovery, JWKS and userinfo."""
        assert self._http is not None, "use OpenIDLogin as an async context manager"
        return self._http

    async def metadata(self) -> dict[str, Any]:
        """The issuer's discovery document (fetched once); its ``issuer`` must match."""
        if self._metadata is None:
            url = f"{self.issuer}/.well-known/openid-configuration"
            document = await self._get_json(url)
            if str(document.get("issuer", "")).rstrip("/") != self.issuer:
                raise ServiceUnavailable(f"the OpenID issuer at {url} names another issuer")
            self._metadata = document
        return self._metadata

    async def _get_json(self, url: str, **kwargs: Any) -> dict[str, Any]:
        try:
            response = await self.http.get(url, **kwargs)
            response.raise_for_status()
            data = response.json()
        except (httpx2.HTTPError, ValueError) as exc:
            log.warning("OpenID issuer request %s failed: %s", url, exc)
            raise ServiceUnavailable("the OpenID issuer cannot be reached; try again") from exc
        if not isinstance(data, dict):
            raise ServiceUnavailable("the OpenID issuer answered something unexpected")
        return data

    async def _key_set(self, *, refresh: bool = False) -> KeySet:
        if self._keys is None or refresh:
            meta = await self.metadata()
            self._keys = KeySet.import_key_set(await self._get_json(meta["jwks_uri"]))  # type: ignore[arg-type]  # a JWKS document
        return self._keys

    def _client(self, redirect_uri: str) -> AsyncOAuth2Client:
        return AsyncOAuth2Client(
            client_id=self.settings.oidc_client_id,
            client_secret=self.settings.oidc_client_secret.get_secret_value(),
            scope=" ".join(self.settings.oidc_scopes),
            redirect_uri=redirect_uri,
            code_challenge_method="S256",
            timeout=10.0,
        )

    # -- the flow ------------------------------------------------------------------------------

    async def begin(self, request: Request, next_url: str) -> tuple[str, str]:
        """Start a login; returns the issuer URL to redirect to and the state."""
        meta = await self.metadata()
        self._origin = f"{request.url.scheme}://{request.url.netloc}"
        redirect_uri = f"{self._origin}{self.base_url}oauth/callback"
        verifier = secrets.token_urlsafe(48)
        nonce = secrets.token_urlsafe(24)
        state = secrets.token_urlsafe(24)
        async with self._client(redirect_uri) as client:
            url, _ = client.create_authorization_url(
                meta["authorization_endpoint"], state=state, code_verifier=verifier, nonce=nonce
            )
        self._expire_pending()
        self._pending[state] = _Pending(verifier, nonce, next_url, redirect_uri, time.monotonic())
        return str(url), state

    def _expire_pending(self) -> None:
        now = time.monotonic()
        for state in [s for s, p in self._pending.items() if now - p.started > PENDING_SECONDS]:
            del self._pending[state]
        while len(self._pending) >= _PENDING_LIMIT:
            self._pending.pop(next(iter(self._pending)))

    async def finish(
        self, *, code: str, state: str, cookie_state: str, iss: str | None
    ) -> tuple[User, dict[str, Any], str]:
        """Complete a login; returns the user, the token response and where to go next.

        Raises :class:`LoginRefused` for a bad state, issuer, code, ID token or a user the
        allow-lists refuse.
        """
        pending = self._pending.pop(state, None) if state else None
        if pending is None or not secrets.compare_digest(state.encode(), cookie_state.encode()):
            raise LoginRefused("This login is unknown or expired, or was started elsewhere")
        if time.monotonic() - pending.started > PENDING_SECONDS:
            raise LoginRefused("This login took too long; start again")
        meta = await self.metadata()
        if iss is not None and iss.rstrip("/") != self.issuer:
            raise LoginRefused("The login response comes from another issuer")
        async with self._client(pending.redirect_uri) as client:
            try:
                token = await client.fetch_token(
                    meta["token_endpoint"], code=code, code_verifier=pending.verifier
                )
            except (OAuthError, OAuth2Error, httpx2.HTTPError) as exc:
                log.info("OpenID code exchange refused: %s", exc)
                raise LoginRefused("The issuer refused the login code") from exc
        id_token = token.get("id_token")
        if not isinstance(id_token, str):
            raise LoginRefused("The issuer sent no ID token")
        claims = await self.validate_id_token(id_token, nonce=pending.nonce)
        info = await self.userinfo(str(token.get("access_token", "")))
        if info is not None:
            if info.get("sub") != claims.get("sub"):
                raise LoginRefused("The issuer's userinfo is about someone else")
            claims = {**claims, **info}
        user = await self._account_for(claims)
        return user, dict(token), pending.next_url

    async def validate_id_token(
        self, id_token: str, *, nonce: str | None, refreshed: bool = False
    ) -> dict[str, Any]:
        """Check an ID token's signature and claims; returns its claims.

        An ID token of a login must carry ``nonce``; one ``refreshed`` with a refresh token
        need not, but when it does it must be the login's (OpenID Connect Core 12.2).
        """
        nonce_option: jwt.ClaimsOption = {"essential": not refreshed}
        if nonce is not None:
            nonce_option["value"] = nonce
        keys = await self._key_set()
        try:
            try:
                decoded = jwt.decode(id_token, keys)
            except JoseError:  # maybe the issuer rotated its keys: fetch them once more
                decoded = jwt.decode(id_token, await self._key_set(refresh=True))
            registry = jwt.JWTClaimsRegistry(
                leeway=_LEEWAY,
                iss={"essential": True, "value": self.issuer},
                aud={"essential": True, "value": self.settings.oidc_client_id},
                exp={"essential": True},
                sub={"essential": True},
                nonce=nonce_option,
            )
            registry.validate(decoded.claims)
        except (JoseError, ValueError) as exc:
            log.info("OpenID ID token refused: %s", exc)
            raise LoginRefused(f"The ID token is not valid: {exc}") from exc
        return dict(decoded.claims)

    async def userinfo(self, access_token: str) -> dict[str, Any] | None:
        """The issuer's userinfo for an access token; None when it has no such endpoint."""
        meta = await self.metadata()
        url = meta.get("userinfo_endpoint")
        if not url or not access_token:
            return None
        return await self._get_json(url, headers={"Authorization": f"Bearer {access_token}"})

    def _groups(self, claims: dict[str, Any]) -> list[str]:
        value = claims.get(self.settings.oidc_groups_claim, [])
        if isinstance(value, str):
            return [value]
        return [str(group) for group in value] if isinstance(value, list) else []

    def _username(self, claims: dict[str, Any]) -> str:
        value = claims.get(self.settings.oidc_username_claim) or claims.get("sub")
        return str(value or "")

    def allowed(self, username: str, groups: list[str]) -> bool:
        """Whether the allow-lists let this user in (admin groups always are)."""
        settings = self.settings
        if set(groups) & set(settings.oidc_admin_groups):
            return True
        if not settings.allowed_users and not settings.allowed_groups:
            return True
        return username in settings.allowed_users or bool(
            set(groups) & set(settings.allowed_groups)
        )

    def _is_admin(self, groups: list[str]) -> bool:
        return bool(set(groups) & set(self.settings.oidc_admin_groups))

    async def _account_for(self, claims: dict[str, Any]) -> User:
        username = self._username(claims)
        groups = self._groups(claims)
        if not username or not self.allowed(username, groups):
            log.info("OpenID user %r with groups %s is not allowed in", username, groups)
            raise LoginRefused(f"{username or 'This user'} is not allowed on this server")
        account = await self.directory.sync_external(
            username,
            display_name=claims.get("name"),
            avatar_url=claims.get("picture"),
            groups=groups,
            admin=self._is_admin(groups),
            source="oidc",
        )
        if not account.enabled:
            raise LoginRefused(f"The account {username} is disabled")
        return account.user()

    # -- sessions --------------------------------------------------------------------------

    async def recheck(self, row: SessionRow) -> tuple[bool | None, dict[str, str]]:
        """Whether the issuer still vouches for a session's user and the allow-lists still let
        them in (None: the issuer cannot be asked right now, the session is kept); and the
        renewed tokens to store. When they are, their groups and admin flag are updated to
        what the issuer says now (a user demoted there is no longer an administrator here).

        An access token the issuer refuses (expired) is renewed with the session's refresh
        token; without one, or when the issuer refuses that too, the session ends.

        Userinfo without the groups claim says nothing certain: some issuers give groups in
        ID tokens alone, others leave out a claim that would be empty. The session's refresh
        token then gets a new ID token, and its groups claim decides; none there either
        means no groups. A session without a refresh token keeps the groups of its login.

        Rechecks of one session running at once share one answer: an issuer that rotates
        refresh tokens would take a second use of the old one for a stolen token.
        """
        flight = self._rechecks.get(row.digest)
        if flight is not None:
            await flight.done.wait()
            return flight.result or (None, {})
        flight = self._rechecks[row.digest] = _Flight()
        try:
            result = flight.result = await self._recheck(row)
            return result
        finally:
            del self._rechecks[row.digest]
            flight.done.set()

    async def _recheck(self, row: SessionRow) -> tuple[bool | None, dict[str, str]]:
        renewed: dict[str, str] = {}
        access_token = row.access_token or ""
        token: dict[str, Any] | None = None
        try:
            info = await self.userinfo(access_token)
        except ServiceUnavailable as exc:
            if not _refused(exc):
                return None, renewed
            if not row.refresh_token:
                return False, renewed
            try:
                token = await self._refresh(row.refresh_token)
            except LoginRefused:
                return False, renewed
            renewed.update(_renewed(token))
            access_token = str(token.get("access_token", ""))
            try:
                info = await self.userinfo(access_token)
            except ServiceUnavailable as again:
                return (False if _refused(again) else None), renewed
        if info is None:
            return None, renewed
        if self.settings.oidc_groups_claim in info:
            groups = self._groups(info)
        else:
            refresh_token = renewed.get("refresh_token") or row.refresh_token
            if not refresh_token:
                # Nothing to ask for an ID token: the groups of the login stand.
                account = await self.directory.account(row.account_id)
                known = list(account.groups) if account is not None else []
                return self.allowed(self._username(info), known), renewed
            if token is None:
                try:
                    token = await self._refresh(refresh_token)
                except LoginRefused:
                    return False, renewed
                renewed.update(_renewed(token))
            id_token = token.get("id_token")
            claims: dict[str, Any] = {}
            if isinstance(id_token, str):
                login = _payload(row.id_token or "")
                try:
                    claims = await self.validate_id_token(
                        id_token, nonce=login.get("nonce"), refreshed=True
                    )
                except LoginRefused:
                    return False, renewed
                if claims.get("sub") != info.get("sub") or (
                    "sub" in login and claims.get("sub") != login["sub"]
                ):
                    log.info("OpenID refreshed ID token is about someone else")
                    return False, renewed
            # No groups claim in the ID token either (or no ID token): no groups.
            groups = self._groups(claims)
        if not self.allowed(self._username(info), groups):
            return False, renewed
        await self.directory.refresh_external(
            row.account_id, groups=groups, admin=self._is_admin(groups)
        )
        return True, renewed

    async def _refresh(self, refresh_token: str) -> dict[str, Any]:
        meta = await self.metadata()
        async with self._client("") as client:
            try:
                token = await client.refresh_token(
                    meta["token_endpoint"], refresh_token=refresh_token
                )
            except (OAuthError, OAuth2Error, httpx2.HTTPError) as exc:
                log.info("OpenID refresh refused: %s", exc)
                raise LoginRefused("The issuer refused to renew the session") from exc
        return dict(token)

    def logout_url(self, row: SessionRow) -> str | None:
        """The issuer's logout page for a session opened here (RP-initiated logout)."""
        end = (self._metadata or {}).get("end_session_endpoint")
        if not end or not row.id_token:
            return None
        query = {"id_token_hint": row.id_token, "client_id": self.settings.oidc_client_id}
        if self._origin:
            query["post_logout_redirect_uri"] = f"{self._origin}{self.base_url}login"
        return f"{end}?{urlencode(query)}"


@dataclass
class _Flight:
    """A recheck under way, for other requests of the same session to wait for."""

    done: anyio.Event = field(default_factory=anyio.Event)
    result: tuple[bool | None, dict[str, str]] | None = None


def _renewed(token: dict[str, Any]) -> dict[str, str]:
    """The session columns to store from a refresh's token response."""
    renewed = {"access_token": str(token.get("access_token", ""))}
    for name in ("refresh_token", "id_token"):
        if isinstance(token.get(name), str) and token[name]:
            renewed[name] = token[name]
    return renewed


def _payload(id_token: str) -> dict[str, Any]:
    """The claims of an ID token this server validated and stored itself ({} when it cannot
    be read)."""
    try:
        part = id_token.split(".")[1]
        claims = json.loads(base64.urlsafe_b64decode(part + "=" * (-len(part) % 4)))
    except (IndexError, ValueError):
        return {}
    return claims if isinstance(claims, dict) else {}


def _refused(exc: ServiceUnavailable) -> bool:
    """Whether the issuer answered 401 or 403 (a token it no longer accepts)."""
    cause = exc.__cause__
    return isinstance(cause, httpx2.HTTPStatusError) and cause.response.status_code in (401, 403)


OIDC: ServiceKey[OpenIDLogin] = ServiceKey("users.oidc")
"""The OpenID login of the users plugin, provided when ``users.oidc_issuer`` is set."""

router = APIRouter(tags=["users"])


def _login(request: Request) -> OpenIDLogin:
    login = request.app.state.services.get_optional(OIDC)
    if login is None:
        raise Forbidden("OpenID Connect logins are not configured (users.oidc_issuer)")
    return login  # type: ignore[no-any-return]  # registry values are typed by their key


_FAILURES: dict[int | str, dict[str, Any]] = {
    403: {"description": "OpenID Connect is not configured, or the login was refused"},
    503: {"description": "The OpenID issuer cannot be reached"},
}


@router.get(
    "/login/oidc",
    include_in_schema=False,
    response_class=RedirectResponse,
    status_code=302,
    responses=_FAILURES,
)
async def oidc_start(request: Request, next: Annotated[str | None, Query()] = None) -> Response:
    """Leave for the issuer's login page."""
    login = _login(request)
    auth = request.app.state.services.get(AUTH)
    url, state = await login.begin(request, safe_next(next, auth.settings.base_url))
    response = RedirectResponse(url, status_code=302)
    response.set_cookie(
        STATE_COOKIE,
        state,
        max_age=int(PENDING_SECONDS),
        path=auth.settings.base_url,
        httponly=True,
        samesite="lax",
        secure=auth.settings.certfile is not None or auth.settings.cookie_secure,
    )
    return response


@router.get(
    "/oauth/callback",
    include_in_schema=False,
    response_class=RedirectResponse,
    status_code=302,
    responses=_FAILURES,
)
async def oidc_callback(
    request: Request,
    code: Annotated[str, Query()] = "",
    state: Annotated[str, Query()] = "",
    iss: Annotated[str | None, Query()] = None,
    error: Annotated[str | None, Query()] = None,
) -> Response:
    """Come back from the issuer: finish the login and open a session."""
    login = _login(request)
    auth = request.app.state.services.get(AUTH)
    if error is not None:
        raise LoginRefused(f"The issuer refused the login: {error[:100]}")
    user, token, next_url = await login.finish(
        code=code, state=state, cookie_state=request.cookies.get(STATE_COOKIE, ""), iss=iss
    )
    response = await start_session(
        request,
        user,
        next_url,
        id_token=token.get("id_token"),
        access_token=token.get("access_token"),
        refresh_token=token.get("refresh_token"),
    )
    response.delete_cookie(STATE_COOKIE, path=auth.settings.base_url)
    return response
