"""Settings of the users plugin (section ``[users]``)."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field, SecretStr, field_validator

from junction.plugin import PluginSettings

__all__ = ["UsersSettings"]


def _split(value: Any) -> Any:
    if isinstance(value, str):
        return [item.strip() for item in value.split(",") if item.strip()]
    return value


class UsersSettings(PluginSettings):
    """Accounts, logins, sessions, tokens and OpenID Connect."""

    password_login: bool = Field(
        True, description="Offer the username and password form for local accounts."
    )
    default_roles: list[str] = Field(
        default_factory=lambda: ["user"],
        description="Roles of new accounts (built in: user, viewer, admin).",
    )
    session_idle_hours: float = Field(
        12.0, gt=0, description="A browser session ends after this long without a request."
    )
    session_max_days: float = Field(
        14.0, gt=0, description="A browser session ends this long after login, whatever else."
    )
    token_max_days: float = Field(
        0.0,
        ge=0,
        description="Longest lifetime of a new API token; 0 allows tokens that never expire.",
    )
    cache_seconds: float = Field(
        60.0,
        ge=0,
        description="How long a checked token or session is trusted from memory before the "
        "database is read again. Revocations made on this server apply at once; made "
        "elsewhere (another server, 'junction users revoke'), within "
        "revocation_poll_seconds, or within this delay while the database cannot be read.",
    )
    revocation_poll_seconds: float = Field(
        1.0,
        ge=0,
        description="How often this server reads the credentials generation, a counter that "
        "every revocation bumps (revoked token, ended sessions, disabled account, changed "
        "roles), and drops its cache of checked tokens and sessions when it moved: a "
        "revocation made by another process sharing the database applies here within about "
        "this delay. One primary-key lookup per poll; 0 turns polling off (then "
        "cache_seconds bounds the delay).",
    )
    identity: Literal["oidc", "hub"] = Field(
        "oidc",
        description="Where logins other than passwords come from: 'oidc' (an OpenID Connect "
        "issuer, when oidc_issuer is set) or 'hub' (the JupyterHub this server is a service "
        "of, from the JUPYTERHUB_* variables; docs/jupyterhub.md).",
    )
    hub_admin_groups: list[str] = Field(
        default_factory=list,
        description="identity = 'hub': members of these Hub groups are administrators.",
    )
    hub_admins: bool = Field(
        False, description="identity = 'hub': the Hub's administrators are administrators here."
    )
    hub_group_roles: dict[str, list[str]] = Field(
        default_factory=dict,
        description="identity = 'hub': roles given to members of Hub groups at each login, on "
        'top of default_roles, e.g. {"teachers": ["admin"], "auditors": ["viewer"]}; '
        "empty: roles are left as set here.",
    )
    oidc_issuer: str = Field(
        "", description="OpenID Connect issuer URL; empty turns OpenID Connect logins off."
    )
    oidc_client_id: str = Field("", description="Client id registered with the issuer.")
    oidc_client_secret: SecretStr = Field(
        SecretStr(""), description="Client secret registered with the issuer."
    )
    oidc_scopes: list[str] = Field(
        default_factory=lambda: ["openid", "profile", "email", "groups"],
        description="Scopes asked of the issuer.",
    )
    oidc_username_claim: str = Field(
        "preferred_username",
        description="Claim that becomes the username ('sub' when the claim is missing).",
    )
    oidc_groups_claim: str = Field("groups", description="Claim listing the user's groups.")
    oidc_admin_groups: list[str] = Field(
        default_factory=list, description="Members of these groups are administrators."
    )
    oidc_label: str = Field(
        "Log in with OpenID Connect", description="Text of the login page's OpenID button."
    )
    oidc_recheck_seconds: float = Field(
        300.0,
        ge=0,
        description="How often a session's groups are fetched again from the issuer (or, "
        "with identity = 'hub', its token shown to the Hub again), so a user removed from the "
        "allowed groups, or logged out at the Hub, is logged out.",
    )
    allowed_users: list[str] = Field(
        default_factory=list,
        description="OpenID or Hub users allowed in (empty with allowed_groups empty: everyone "
        "the issuer vouches for, or the Hub lets use this service).",
    )
    allowed_groups: list[str] = Field(
        default_factory=list,
        description="Members of these OpenID or Hub groups are allowed in.",
    )
    home_template: str = Field(
        "home/{username}",
        description="Each user's private folder under the root dir (created on first use); "
        "ordinary users reach only it and folders shared with them.",
    )
    max_kernels_per_user: int = Field(
        0, ge=0, description="Running kernels one user may own at once (0: no limit)."
    )
    max_terminals_per_user: int = Field(
        0, ge=0, description="Running terminals one user may own at once (0: no limit)."
    )
    unix_accounts: bool = Field(
        False,
        description="Run each user's kernels and terminals under a Unix account of their "
        "own, so the operating system keeps users' files apart (the server must run as root).",
    )
    unix_account_template: str = Field(
        "{username}", description="The Unix account a user's processes run as."
    )
    unix_create_accounts: bool = Field(
        True,
        description="Create a missing Unix account with useradd (else the user's kernels "
        "and terminals are refused).",
    )

    @field_validator("home_template")
    @classmethod
    def _home_template(cls, value: str) -> str:
        parts = value.strip("/").split("/")
        if "{username}" not in parts or any(p in ("", ".", "..") for p in parts):
            raise ValueError(
                "home_template must be a relative path with a {username} segment, "
                "such as 'home/{username}'"
            )
        return value.strip("/")

    @field_validator(
        "default_roles",
        "oidc_scopes",
        "oidc_admin_groups",
        "hub_admin_groups",
        "allowed_users",
        "allowed_groups",
        mode="before",
    )
    @classmethod
    def _comma_separated(cls, value: Any) -> Any:
        return _split(value)

    @property
    def oidc_enabled(self) -> bool:
        """Whether OpenID Connect logins are configured."""
        return bool(self.oidc_issuer and self.oidc_client_id)
