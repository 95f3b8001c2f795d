"""Talking to the Hub's REST API: who a token belongs to, OAuth codes, activity reports.

Plain OAuth 2.0 against ``{api_url}/oauth2/token`` and ``{api_url}/user`` over httpx; the
Hub publishes no discovery document, ID token or JWKS.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping
from datetime import datetime
from typing import Any
from urllib.parse import urljoin

import anyio
import httpx

from junction.errors import ConfigError
from junction.plugins.hub.settings import HubSettings
from junction.services import isoformat

__all__ = ["HubAPI", "HubUnavailable", "has_access"]

log = logging.getLogger("junction.hub")


class HubUnavailable(Exception):
    """The Hub did not answer, or answered with a server error."""


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


class HubAPI:
    """One server's client for its Hub; use as an async context manager."""

    def __init__(self, settings: HubSettings) -> None:
        self.settings = settings
        self.api_url = settings.api_url.rstrip("/")
        self._client = httpx.AsyncClient(timeout=settings.request_timeout)

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
                    version = str(response.headers.get("x-jupyterhub-version", ""))
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
            raise HubUnavailable(str(exc)) from exc
        if response.status_code >= 500:
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
