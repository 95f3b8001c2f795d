"""Talking to the Hub's REST API: who a token belongs to, OAuth codes, activity reports.

Plain OAuth 2.0 against ``{api_url}/oauth2/token`` and ``{api_url}/user`` over httpx; the
Hub publishes no discovery document, ID token or JWKS.
"""

from __future__ import annotations

import logging
import ssl
import time
from collections.abc import Iterable, Mapping
from datetime import datetime
from typing import Any
from urllib.parse import urljoin

import anyio
import httpx

from junction.errors import ConfigError
from junction.plugins.hub.service import HubUnavailable
from junction.plugins.hub.settings import HubSettings
from junction.services import isoformat

__all__ = ["ALIVE_SECONDS", "HubAPI", "HubUnavailable", "has_access", "internal_ssl_context"]

log = logging.getLogger("junction.hub")

ALIVE_SECONDS = 5.0
"""How long an answer of the Hub counts as "the Hub is up" for :meth:`HubAPI.check`."""


def _scope_covers(held: str, required: str) -> bool:
    """Whether one held Hub scope grants one required scope (filters resolved as the Hub's
    ``check_scopes`` does, except groups)."""
    if held == required:
        return True
    base, _, want = required.partition("!")
    held_base, _, held_filter = held.partition("!")
    if held_base != base:
        return False
    if not held_filter:
        return True
    # access:servers!user=ana covers access:servers!server=ana/ and ana/named
    kind, _, value = want.partition("=")
    held_kind, _, held_value = held_filter.partition("=")
    return kind == "server" and held_kind == "user" and value.partition("/")[0] == held_value


def has_access(required: Iterable[str], held: Iterable[str]) -> bool:
    """Whether ``held`` scopes grant any of the ``required`` access scopes."""
    held = list(held)
    return any(_scope_covers(h, r) for r in required for h in held)


def internal_ssl_context(settings: HubSettings) -> ssl.SSLContext | None:
    """The client TLS context of the Hub's internal SSL (``c.JupyterHub.internal_ssl``), as
    jupyterhub's ``make_ssl_context`` makes it: this server's certificate and key, the Hub's
    CA, peers always verified; None when no certificate is configured."""
    if not settings.ssl_certfile or not settings.ssl_keyfile:
        return None
    context = ssl.create_default_context(
        ssl.Purpose.SERVER_AUTH, cafile=settings.ssl_client_ca or None
    )
    context.verify_mode = ssl.CERT_REQUIRED
    context.load_cert_chain(settings.ssl_certfile, settings.ssl_keyfile)
    return context


class HubAPI:
    """One server's client for its Hub; use as an async context manager.

    Requests carry ``X-JupyterHub-Version`` (the Hub's own version once :meth:`wait_for_hub`
    or :meth:`check` learned it), as the Hub's clients do, and present the internal TLS
    certificate when the Hub gave one (``JUPYTERHUB_SSL_*``).
    """

    def __init__(self, settings: HubSettings) -> None:
        self.settings = settings
        self.api_url = settings.api_url.rstrip("/")
        context = internal_ssl_context(settings)
        self._client = httpx.AsyncClient(
            timeout=settings.request_timeout, verify=context if context is not None else True
        )
        self._alive_until = 0.0
        self.hub_version = ""
        """The Hub's version, from its ``X-JupyterHub-Version`` header ('' until known)."""

    def _learn_version(self, response: httpx.Response) -> str:
        version = str(response.headers.get("x-jupyterhub-version", ""))
        if version and version != self.hub_version:
            self.hub_version = version
            self._client.headers["X-JupyterHub-Version"] = version
        return version

    async def check(self) -> None:
        """Ask once (5 s at most) whether the Hub answers (``GET {api_url}/``), before sending
        a browser there; raises :class:`HubUnavailable` when it does not. An answer is
        trusted for :data:`ALIVE_SECONDS` (until a call fails), so a burst of logins costs
        the Hub one request."""
        if time.monotonic() < self._alive_until:
            return
        try:
            response = await self._client.get(self.api_url + "/", timeout=5.0)
        except httpx.HTTPError as exc:
            raise HubUnavailable(f"{type(exc).__name__}: {exc}") from exc
        if response.status_code >= 500:
            raise HubUnavailable(f"HTTP {response.status_code}")
        self._learn_version(response)
        self._alive_until = time.monotonic() + ALIVE_SECONDS

    async def __aenter__(self) -> HubAPI:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self._client.aclose()

    def _server_auth(self) -> dict[str, str]:
        return {"Authorization": f"token {self.settings.api_token.get_secret_value()}"}

    async def wait_for_hub(self, *, tries: int = 5, first_delay: float = 1.0) -> str:
        """Check that the Hub answers ``GET {api_url}``; returns its version.

        Retries with doubling delays; raises :class:`ConfigError` naming the URL and the
        last failure when every try failed.
        """
        if not self.api_url:
            raise ConfigError(
                "hub: no Hub API URL; set JUPYTERHUB_API_URL (the Hub sets it when it "
                "spawns this server) or hub.api_url"
            )
        delay = first_delay
        problem = ""
        for attempt in range(1, tries + 1):
            try:
                response = await self._client.get(self.api_url + "/")
                if response.status_code < 500:
                    version = self._learn_version(response)
                    log.info("connected to the Hub at %s (version %s)", self.api_url, version)
                    return version
                problem = f"HTTP {response.status_code}"
            except httpx.HTTPError as exc:
                problem = f"{type(exc).__name__}: {exc}"
            log.warning(
                "cannot reach the Hub at %s (attempt %d/%d): %s",
                self.api_url,
                attempt,
                tries,
                problem,
            )
            if attempt < tries:
                await anyio.sleep(delay)
                delay = min(delay * 2, 16)
        raise ConfigError(
            f"hub: the Hub API at {self.api_url} did not answer after {tries} tries "
            f"({problem}); is the Hub running and JUPYTERHUB_API_URL right?"
        )

    async def user_model(self, token: str) -> dict[str, Any] | None:
        """The Hub's model of the user (or service) a token belongs to, None if refused.

        Raises :class:`HubUnavailable` when the Hub cannot answer.
        """
        try:
            response = await self._client.get(
                self.api_url + "/user", headers={"Authorization": f"token {token}"}
            )
        except httpx.HTTPError as exc:
            self._alive_until = 0.0
            raise HubUnavailable(str(exc)) from exc
        if response.status_code >= 500:
            self._alive_until = 0.0
            raise HubUnavailable(f"HTTP {response.status_code}")
        if response.status_code != 200:
            return None
        model = response.json()
        return model if isinstance(model, dict) else None

    async def token_for_code(self, code: str, code_verifier: str, redirect_uri: str) -> str:
        """Finish an OAuth login: exchange the authorization code for an access token.

        Raises :class:`HubUnavailable` when the Hub is down, :class:`ValueError` when it
        refuses the code.
        """
        form = {
            "client_id": self.settings.oauth_client_id,
            "client_secret": self.settings.api_token.get_secret_value(),
            "grant_type": "authorization_code",
            "code": code,
            "redirect_uri": redirect_uri,
            "code_verifier": code_verifier,
        }
        try:
            response = await self._client.post(self.api_url + "/oauth2/token", data=form)
        except httpx.HTTPError as exc:
            raise HubUnavailable(str(exc)) from exc
        if response.status_code >= 500:
            raise HubUnavailable(f"HTTP {response.status_code}")
        body = response.json() if response.content else {}
        token = body.get("access_token") if isinstance(body, Mapping) else None
        if response.status_code != 200 or not isinstance(token, str):
            raise ValueError(f"the Hub refused the OAuth code (HTTP {response.status_code})")
        return token

    async def report_activity(self, moment: datetime) -> None:
        """POST this server's last activity to ``activity_url``; raises on any failure."""
        stamp = isoformat(moment)
        body = {
            "servers": {self.settings.server_name: {"last_activity": stamp}},
            "last_activity": stamp,
        }
        response = await self._client.post(
            self.settings.activity_url, json=body, headers=self._server_auth()
        )
        response.raise_for_status()

    def authorize_url(self, *, redirect_uri: str, state: str, code_challenge: str) -> str:
        """Where to send a browser to log in at the Hub (authorization code with PKCE)."""
        params = httpx.QueryParams(
            client_id=self.settings.oauth_client_id,
            redirect_uri=redirect_uri,
            response_type="code",
            state=state,
            code_challenge=code_challenge,
            code_challenge_method="S256",
        )
        base = urljoin(self.settings.hub_url, "api/oauth2/authorize")
        return f"{base}?{params}"
