"""The Hub as this server's identity provider (the core's ``IDENTITY`` service).

Requests carry a Hub token (``Authorization: token|bearer``, ``?token=``) or, from browsers,
a session cookie made at the end of the Hub's OAuth login. Either way the Hub says who the
token belongs to (``GET {api}/user``); the answer is trusted for ``hub.cache_max_age``
seconds, as jupyterhub-singleuser does, and for as long as the Hub does not answer (so open
sessions outlive a Hub restart; a token the Hub never vouched for is refused meanwhile).
Only users holding one of the server's access scopes get in; whoever gets in may do
everything (the core's ``TokenHolder`` authorizer), which is what sharing a server through
the Hub means.
"""

from __future__ import annotations

import hashlib
import logging
import secrets
import time
from collections.abc import Sequence
from contextvars import ContextVar
from dataclasses import dataclass

from junction.auth.identity import User
from junction.plugins.hub.hubapi import HubAPI, HubUnavailable, has_access
from junction.plugins.hub.oauth import HubOAuth
from junction.plugins.hub.settings import HubSettings

__all__ = ["HubIdentity", "HubRequest", "current_hub_request"]

log = logging.getLogger("junction.hub")

_MAX_CACHED = 4096

OUTAGE_RETRY_SECONDS = 10.0
"""While the Hub does not answer, how often a token it vouched for before is asked about
again (it keeps working meanwhile)."""


@dataclass(frozen=True)
class HubRequest:
    """Who the Hub says is making the current request, and with which token."""

    user: User
    token: str


current_hub_request: ContextVar[HubRequest | None] = ContextVar("hub_request", default=None)
"""Set while a request the Hub vouched for runs (read by the page config)."""


@dataclass
class _Checked:
    user: User | None
    until: float


class HubIdentity:
    """Identities from the Hub, cached; browser sessions in memory (a restarted server sends
    browsers through the Hub's OAuth again, which the Hub approves without asking)."""

    password_login = False

    def __init__(
        self, settings: HubSettings, api: HubAPI, *, cookie_secret: bytes, base_url: str
    ) -> None:
        self.settings = settings
        self.api = api
        self.oauth = HubOAuth(api, cookie_secret=cookie_secret, base_url=base_url)
        """The Hub's OAuth login of this server."""
        self._checked: dict[str, _Checked] = {}
        self._sessions: dict[str, str] = {}

    def login_forward(self) -> str | None:
        """The login page forwards straight to the Hub's OAuth login (the core's
        :class:`~junction.auth.routes.LoginForward`)."""
        return "oauth_login"

    def login_links(self) -> Sequence[tuple[str, str]]:
        """The one way in: the Hub's OAuth login."""
        return [("Log in with JupyterHub", "oauth_login")]

    def user_of(self, model: dict[str, object]) -> User | None:
        """The user a Hub model describes, when it holds one of the access scopes."""
        name = model.get("name")
        scopes = model.get("scopes")
        if not isinstance(name, str) or not isinstance(scopes, list):
            return None
        if not has_access(self.settings.access_scopes, (str(s) for s in scopes)):
            log.info("the Hub's %s %s has no access to this server", model.get("kind"), name)
            return None
        groups = model.get("groups")
        return User.named(
            name, groups=tuple(str(g) for g in groups) if isinstance(groups, list) else ()
        )

    def remember(self, token: str, user: User) -> None:
        """Record that the Hub just vouched for ``token`` (at the end of an OAuth login)."""
        digest = hashlib.sha256(token.encode()).hexdigest()
        self._checked[digest] = _Checked(user, time.monotonic() + self.settings.cache_max_age)

    async def user_for_token(self, token: str) -> User | None:
        """The user a Hub token belongs to, if they may use this server (cached)."""
        digest = hashlib.sha256(token.encode()).hexdigest()
        now = time.monotonic()
        checked = self._checked.get(digest)
        if checked is None or checked.until < now:
            try:
                model = await self.api.user_model(token)
            except HubUnavailable as exc:
                if checked is None or checked.user is None:
                    log.warning("cannot ask the Hub who a token belongs to: %s", exc)
                    return None
                # The Hub vouched for this token before: open sessions and known tokens keep
                # working through an outage; the Hub is asked again after a short while.
                log.warning(
                    "cannot ask the Hub about %s's token (%s); trusting its last answer",
                    checked.user.username,
                    exc,
                )
                checked.until = now + OUTAGE_RETRY_SECONDS
            else:
                if len(self._checked) >= _MAX_CACHED:
                    self._checked = {k: v for k, v in self._checked.items() if v.until >= now}
                    if len(self._checked) >= _MAX_CACHED:
                        self._checked.clear()
                user = self.user_of(model) if model is not None else None
                checked = _Checked(user, now + self.settings.cache_max_age)
                self._checked[digest] = checked
        if checked.user is not None:
            current_hub_request.set(HubRequest(checked.user, token))
        return checked.user

    async def user_for_session(self, session: str, *, touch: bool = True) -> User | None:
        """The user of a browser session, re-checked with the Hub every ``cache_max_age``
        (sessions here have no idle deadline to refresh: ``touch`` changes nothing)."""
        token = self._sessions.get(session)
        if token is None:
            return None
        user = await self.user_for_token(token)
        if user is None:
            self._sessions.pop(session, None)
        return user

    async def check_password(self, username: str, password: str) -> User | None:
        """Never: passwords are the Hub's business."""
        return None

    async def open_session(
        self, user: User, *, agent: str, address: str, hub_token: str = ""
    ) -> str:
        """Start a browser session holding ``hub_token`` (by default the current request's)."""
        if not hub_token:
            current = current_hub_request.get()
            hub_token = current.token if current is not None else ""
        session = secrets.token_urlsafe(32)
        self._sessions[session] = hub_token
        return session

    async def close_session(self, session: str) -> str | None:
        """Forget the session and continue at the Hub's logout page."""
        self._sessions.pop(session, None)
        return self.settings.hub_url + "logout"
