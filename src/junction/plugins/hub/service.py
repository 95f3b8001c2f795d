"""The hub plugins' services: the Hub as identity provider (one server per user) and the
Hub's OAuth client (a shared server that is a Hub service), with their errors.

Implementations live elsewhere in this package (``identity.py``, ``oauth.py``).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING, Any, Protocol

from fastapi import Request
from fastapi.responses import Response

from junction.plugin import ServiceKey

if TYPE_CHECKING:
    from junction.plugins.hub.identity import HubIdentity
    from junction.plugins.hub.models import HubLogin

__all__ = ["HUB_IDENTITY", "HUB_OAUTH", "HubOAuthService", "HubUnavailable"]


class HubUnavailable(Exception):
    """The Hub did not answer, or answered with a server error."""


class HubOAuthService(Protocol):
    """Logins at the Hub for one OAuth client (this server or service), provided by the
    ``hubservice`` plugin as :data:`HUB_OAUTH` for the users plugin (``users.identity =
    "hub"``)."""

    async def begin(self, next_url: str, *, secure: bool) -> Response:
        """The redirect to the Hub's authorization page (PKCE, a signed state cookie); called
        by a login route with a ``next_url`` already checked. Raises ``ServiceUnavailable``
        when the Hub does not answer."""
        ...

    async def finish(self, request: Request, *, code: str, state: str) -> HubLogin:
        """Finish a login at the OAuth callback: check the state against the cookie, exchange
        the code, ask the Hub who logged in. Raises ``BadRequest`` (no code or state),
        ``Forbidden`` (state, refused code), ``ServiceUnavailable`` (Hub down)."""
        ...

    def clear_state(self, response: Response) -> None:
        """Drop the state cookie; called once a login finished."""
        ...

    async def user_model(self, token: str) -> dict[str, Any] | None:
        """The Hub's model of a token's owner (None: refused); raises
        :class:`HubUnavailable`. Called to recheck sessions."""
        ...

    def has_access(self, scopes: Iterable[str]) -> bool:
        """Whether ``scopes`` (a Hub model's) grant one of this client's access scopes."""
        ...

    @property
    def logout_url(self) -> str:
        """The Hub's logout page, where a logout here continues."""
        ...


HUB_IDENTITY: ServiceKey[HubIdentity] = ServiceKey("hub")
"""The :class:`~junction.plugins.hub.identity.HubIdentity` of this server."""

HUB_OAUTH: ServiceKey[HubOAuthService] = ServiceKey("hubservice")
"""The Hub's OAuth client of a shared server, provided by the ``hubservice`` plugin."""
