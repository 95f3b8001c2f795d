"""Wire models of the users API (``/api/users``)."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, Field

from junction.plugins.users.store import Account, SessionRow, TokenRow
from junction.services import isoformat

__all__ = [
    "MAX_EXPIRES_IN",
    "NewToken",
    "NewUser",
    "Revoked",
    "SessionModel",
    "TokenModel",
    "TokenRequest",
    "UserChange",
    "UserModel",
]


def _time(moment: datetime | None) -> str | None:
    return isoformat(moment) if moment is not None else None


class UserModel(BaseModel):
    """An account as the users API reports it (never its password or secrets)."""

    name: str
    display_name: str | None
    initials: str | None
    color: str | None
    avatar_url: str | None
    groups: list[str]
    roles: list[str]
    admin: bool
    enabled: bool
    source: str = Field(description="'local' (password) or 'oidc' (OpenID Connect).")
    has_password: bool
    created: str

    @classmethod
    def of(cls, account: Account) -> UserModel:
        """The model of an account."""
        return cls(
            name=account.name,
            display_name=account.display_name,
            initials=account.initials,
            color=account.color,
            avatar_url=account.avatar_url,
            groups=list(account.groups),
            roles=list(account.roles),
            admin=account.admin,
            enabled=account.enabled,
            source=account.source,
            has_password=account.password_hash is not None,
            created=isoformat(account.created),
        )


class NewUser(BaseModel):
    """Body of ``POST /api/users``."""

    name: str
    display_name: str | None = None
    admin: bool = False
    groups: list[str] = Field(default_factory=list)
    roles: list[str] | None = Field(None, description="Default: users.default_roles.")
    password: str | None = Field(None, description="Set a password for the login form.")


class UserChange(BaseModel):
    """Body of ``PATCH /api/users/{name}``: each field present is changed."""

    enabled: bool | None = None
    admin: bool | None = None
    roles: list[str] | None = None
    password: str | None = None


class TokenModel(BaseModel):
    """An API token without its secret."""

    id: int
    hint: str = Field(description="The token's first characters, to tell tokens apart.")
    note: str
    scopes: list[str] | None = Field(description="None: the owner's full rights.")
    created: str
    expires: str | None
    last_used: str | None = Field(description="Recorded within about 30 seconds.")

    @classmethod
    def of(cls, row: TokenRow) -> TokenModel:
        """The model of a token record."""
        return cls(
            id=row.id,
            hint=row.hint,
            note=row.note,
            scopes=list(row.scopes) if row.scopes is not None else None,
            created=isoformat(row.created),
            expires=_time(row.expires),
            last_used=_time(row.last_used),
        )


class NewToken(TokenModel):
    """A token just made: the only time its secret is shown."""

    token: str


MAX_EXPIRES_IN = 10 * 365 * 24 * 3600
"""The longest ``expires_in`` a token request may ask for, in seconds (ten years)."""


class TokenRequest(BaseModel):
    """Body of ``POST /api/users/{name}/tokens``."""

    note: str = ""
    scopes: list[str] | None = Field(None, description="Limit the token; None: full rights.")
    expires_in: float | None = Field(
        None,
        gt=0,
        le=MAX_EXPIRES_IN,
        allow_inf_nan=False,
        description="Seconds until it expires (at most ten years).",
    )


class SessionModel(BaseModel):
    """An open browser session (its id is never shown)."""

    created: str
    last_seen: str
    expires: str
    agent: str
    address: str

    @classmethod
    def of(cls, row: SessionRow) -> SessionModel:
        """The model of a session record."""
        return cls(
            created=isoformat(row.created),
            last_seen=isoformat(row.last_seen),
            expires=isoformat(row.expires),
            agent=row.agent,
            address=row.address,
        )


class Revoked(BaseModel):
    """How many sessions and tokens a revocation ended."""

    sessions: int
    tokens: int
