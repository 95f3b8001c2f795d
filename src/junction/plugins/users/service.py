"""The users service contract: accounts, sessions and tokens, for routes, the CLI and plugins.

The core sees the same object through the ``IDENTITY`` key
(:class:`~junction.auth.identity.IdentityProvider`); this Protocol adds what administrators
do. Implementations live elsewhere in this package.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Protocol

from junction.errors import BadRequest, Conflict, NotFound
from junction.plugin import ServiceKey
from junction.plugins.users.store import Account, SessionRow, TokenRow

__all__ = [
    "USERS",
    "BadUserName",
    "IdentitySource",
    "TokenNotFound",
    "UserExists",
    "UserNotFound",
    "UsersService",
]


class UserNotFound(NotFound):
    """No account has this name."""

    def __init__(self, name: str) -> None:
        super().__init__(f"No such user: {name}", reason="UserNotFound")


class UserExists(Conflict):
    """An account with this name exists already."""

    def __init__(self, name: str) -> None:
        super().__init__(f"User {name} exists already", reason="UserExists")


class BadUserName(BadRequest):
    """A username that could not be used in paths, cookies or logs."""


class TokenNotFound(NotFound):
    """The user has no token with this id."""

    def __init__(self, token_id: int) -> None:
        super().__init__(f"No such token: {token_id}", reason="TokenNotFound")


class UsersService(Protocol):
    """Accounts, their sessions and tokens. Provided by the users plugin as :data:`USERS`.

    Every change takes effect on this server at once (caches are invalidated); other
    processes sharing the database see it within ``users.revocation_poll_seconds``.
    """

    async def add_user(
        self,
        name: str,
        *,
        admin: bool = False,
        groups: Sequence[str] = (),
        roles: Sequence[str] | None = None,
        password: str | None = None,
        display_name: str | None = None,
    ) -> Account:
        """Create a local account; raises :class:`UserExists` or :class:`BadUserName`."""
        ...

    async def users(self) -> list[Account]:
        """Every account, by name."""
        ...

    async def get(self, name: str) -> Account:
        """One account; raises :class:`UserNotFound`."""
        ...

    async def set_enabled(self, name: str, enabled: bool) -> Account:
        """Enable or disable an account; a disabled one is refused at its next request."""
        ...

    async def set_password(self, name: str, password: str | None) -> None:
        """Set (argon2) or remove an account's password."""
        ...

    async def issue_token(
        self,
        name: str,
        *,
        note: str = "",
        scopes: Sequence[str] | None = None,
        expires: datetime | None = None,
    ) -> tuple[str, TokenRow]:
        """Make an API token; returns the token (shown once, never stored) and its record."""
        ...

    async def tokens(self, name: str) -> list[TokenRow]:
        """The user's API tokens (without the secrets)."""
        ...

    async def revoke_token(self, name: str, token_id: int) -> None:
        """Revoke one token; raises :class:`TokenNotFound`."""
        ...

    async def sessions(self, name: str) -> list[SessionRow]:
        """The user's open browser sessions."""
        ...

    async def revoke(self, name: str, *, tokens: bool = True) -> tuple[int, int]:
        """End every browser session of a user (and revoke every token unless ``tokens`` is
        False): "log out everywhere". Returns the numbers of sessions and tokens revoked."""
        ...


class IdentitySource(Protocol):
    """Where logins other than passwords come from (``users.identity``): an OpenID issuer
    (``oidc.py``) or JupyterHub (``junction.plugins.hub.hubservice``).

    The source runs its own login routes, which end in ``start_session``; the directory keeps
    the accounts and sessions and asks the source about them through these two methods.
    """

    async def recheck(self, row: SessionRow) -> tuple[bool | None, dict[str, str]]:
        """Whether the source still vouches for a session's user (True), no longer does
        (False: the session ends) or cannot tell now (None: kept); and the session's token
        columns to update. Called on a session's first request after
        ``users.oidc_recheck_seconds``, for sessions holding an access token."""
        ...

    def logout_url(self, row: SessionRow) -> str | None:
        """Where the browser goes after logging out of a session (the issuer's or the Hub's
        logout page), or None. Called by logout."""
        ...


USERS: ServiceKey[UsersService] = ServiceKey("users")
