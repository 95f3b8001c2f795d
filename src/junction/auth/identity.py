"""Who is asking: tokens, passwords, signed login cookies, and the user they stand for.

Credentials are checked in the order jupyter_server uses, so existing clients work unchanged:
``?token=`` in the query, an ``Authorization: token|bearer <t>`` header, then the login cookie.
The cookie is signed with the cookie secret and carries a fingerprint of the current token and
password hash, so changing either logs every browser out.

Single-user mode: the token (or password) holder is the one :attr:`Authenticator.user` and
:class:`~junction.auth.authorizer.TokenHolder` allows everything. Multi-user mode: a plugin
(``users``) provides an :class:`IdentityProvider` and an
:class:`~junction.auth.authorizer.Authorizer` and attaches them (:meth:`Authenticator.attach`);
tokens and session cookies the server's own checks do not recognise are then asked of the
provider, which answers from its in-memory cache on the hot path.
"""

from __future__ import annotations

import base64
import getpass
import hashlib
import hmac
import logging
import os
import re
import secrets
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Literal, Protocol

from itsdangerous import BadSignature, URLSafeTimedSerializer
from jupyter_core.paths import jupyter_runtime_dir

from junction.auth.authorizer import Authorizer, TokenHolder
from junction.auth.passwords import verify_password
from junction.settings import ServerSettings

__all__ = ["AuthMethod", "Authenticator", "IdentityProvider", "User", "load_cookie_secret"]

log = logging.getLogger("junction.auth")

AuthMethod = Literal["token", "cookie", "none"]
_AUTH_HEADER = re.compile(r"^(?:token|bearer)\s+(\S+)\s*$", re.IGNORECASE)
_COLORS = ("#1976d2", "#388e3c", "#d32f2f", "#7b1fa2", "#f57c00", "#0097a7", "#5d4037")


_IDENTITY_FIELDS = ("username", "name", "display_name", "initials", "avatar_url", "color")


@dataclass(frozen=True)
class User:
    """An identity, with the fields ``/api/me`` reports as jupyter_server does.

    ``groups``, ``roles`` and ``admin`` matter in multi-user mode only. ``scopes`` is set for
    a request made with an API token limited to some scopes (None: the user's full rights).
    ``expires`` is when the credential the user was identified by stops standing for them, in
    epoch seconds (an API token's expiry, a session's end: its absolute expiry or, when
    sooner, its idle deadline as of this request); None when it has no known end. Open
    WebSockets are checked again then (:mod:`junction.auth.sockets`).
    """

    username: str
    name: str
    display_name: str
    initials: str | None = None
    avatar_url: str | None = None
    color: str | None = None
    groups: tuple[str, ...] = ()
    roles: tuple[str, ...] = ()
    admin: bool = False
    scopes: tuple[str, ...] | None = field(default=None, compare=False)
    expires: float | None = field(default=None, compare=False)

    @classmethod
    def named(cls, username: str, **extra: Any) -> User:
        """Make a user whose display fields derive from the username (``extra`` overrides)."""
        initials = "".join(part[0] for part in re.split(r"[\W_]+", username) if part)[:2]
        digest = hashlib.sha256(username.encode()).digest()
        values: dict[str, Any] = {
            "username": username,
            "name": username,
            "display_name": username,
            "initials": initials.upper() or None,
            "color": _COLORS[digest[0] % len(_COLORS)],
        }
        values.update({k: v for k, v in extra.items() if v is not None})
        return cls(**values)

    def identity(self) -> dict[str, Any]:
        """The ``identity`` object of ``/api/me``: jupyter_server's fields, plus ``groups``,
        ``roles`` and ``admin`` for users a provider manages (those with roles)."""
        data = {name: getattr(self, name) for name in _IDENTITY_FIELDS}
        if self.roles or self.admin:
            data.update(groups=list(self.groups), roles=list(self.roles), admin=self.admin)
        return data


class IdentityProvider(Protocol):
    """Users and their credentials in multi-user mode; provided as the ``IDENTITY`` service.

    The core calls it for every credential its own checks do not recognise, so lookups must
    answer from memory when they can (a short-lived cache, invalidated on revocation).
    """

    password_login: bool
    """Whether the login page asks for a username and a password."""

    def login_links(self) -> Sequence[tuple[str, str]]:
        """``(label, path)`` of other ways to log in shown on the login page (OpenID Connect);
        ``path`` is relative to the base URL."""
        ...

    async def user_for_token(self, token: str) -> User | None:
        """The user an API token stands for (with its scopes and the token's expiry), or
        None."""
        ...

    async def user_for_session(self, session: str, *, touch: bool = True) -> User | None:
        """The user a session cookie value stands for, or None when it is unknown, expired
        or revoked; refreshes the session's idle deadline unless ``touch`` is false (a check
        the server makes of its own, not a request of the user's). The user's ``expires`` is
        when the session ends unless it is used again."""
        ...

    async def check_password(self, username: str, password: str) -> User | None:
        """The user, when ``password`` is theirs and the account is enabled; else None."""
        ...

    async def open_session(self, user: User, *, agent: str, address: str) -> str:
        """Start a browser session for ``user``; returns the new cookie value."""
        ...

    async def close_session(self, session: str) -> str | None:
        """End one browser session (logout); unknown values are ignored. Returns where to
        send the browser next (an OpenID issuer's logout page), or None."""
        ...


def load_cookie_secret(settings: ServerSettings) -> bytes:
    """Return the configured cookie secret, or the one kept in the runtime directory.

    A kept secret lets logins survive a restart; it is created with mode 0600 on first use.
    """
    if settings.cookie_secret is not None:
        return settings.cookie_secret.get_secret_value().encode()
    path = Path(jupyter_runtime_dir()) / "junction_cookie_secret"
    try:
        return path.read_bytes().strip()
    except FileNotFoundError:
        pass
    path.parent.mkdir(parents=True, exist_ok=True)
    secret = secrets.token_hex(32).encode()
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as handle:
        handle.write(secret)
    return secret


class Authenticator:
    """Checks credentials and issues login cookies for one server.

    ``token`` is the shared secret ("" only with ``no_auth``). Created once by the app factory
    and provided to plugins as the core service ``AUTH``.
    """

    def __init__(self, settings: ServerSettings, *, cookie_secret: bytes) -> None:
        self.settings = settings
        self.no_auth = settings.no_auth
        if settings.token is not None:
            self.token = settings.token.get_secret_value()
        else:
            self.token = "" if settings.no_auth else secrets.token_hex(24)
        self.token_generated = settings.token is None and not settings.no_auth
        self._password_hash = (
            settings.password.get_secret_value() if settings.password is not None else None
        )
        self.user = User.named(_os_username())
        self._serializer = URLSafeTimedSerializer(cookie_secret, salt="junction-login")
        self._xsrf_key = hashlib.sha256(b"junction-xsrf\0" + cookie_secret).digest()
        suffix = hashlib.sha256(cookie_secret).hexdigest()[:8]
        self.cookie_name = f"junction-auth-{suffix}"
        fingerprint = f"{self.token}\0{self._password_hash or ''}".encode()
        self._fingerprint = hashlib.sha256(cookie_secret + fingerprint).hexdigest()[:16]
        self.cookie_max_age = int(settings.cookie_max_age_days * 86400)
        self.identity: IdentityProvider | None = None
        self.authorizer: Authorizer = TokenHolder()
        self.owners: dict[tuple[str, str], str] = {}

    def attach(self, identity: IdentityProvider, authorizer: Authorizer) -> None:
        """Switch to multi-user mode; called by the plugin providing ``IDENTITY`` at start.

        The server's own token then stands for an administrator named after the Unix
        account that runs the server.
        """
        self.identity = identity
        self.authorizer = authorizer
        self.user = replace(self.user, admin=True, roles=("admin",))

    def record_owner(self, resource: str, object_id: str, user: User) -> None:
        """Note who started an object (a kernel, a session, a terminal), for
        :meth:`may_access`; called by the plugin that made it."""
        self.owners[(resource, object_id)] = user.username

    def inherit_owner(
        self, resource: str, object_id: str, parent_resource: str, parent_id: str
    ) -> None:
        """Give an object with no recorded owner the owner of the object it belongs to (a
        session, its kernel's): for objects read back from the database after a restart or
        made by another server sharing it."""
        key = (resource, object_id)
        if key not in self.owners:
            owner = self.owners.get((parent_resource, parent_id))
            if owner is not None:
                self.owners[key] = owner

    def forget_owner(self, resource: str, object_id: str) -> None:
        """Forget an object's owner once the object is gone."""
        self.owners.pop((resource, object_id), None)

    def may_access(self, user: User, action: str, resource: str, object_id: str) -> bool:
        """Whether ``user`` may take ``action`` on one object (the authorizer decides, given
        the recorded owner). Plugins answer 404 when it is False, so ids leak nothing."""
        owner = self.owners.get((resource, object_id))
        return self.authorizer.may_access(user, action, resource, owner)

    def detach(self) -> None:
        """Back to single-user mode; called when the providing plugin stops."""
        self.identity = None
        self.authorizer = TokenHolder()
        self.user = replace(self.user, admin=False, roles=())

    @property
    def password_enabled(self) -> bool:
        """Whether a login password is configured."""
        return self._password_hash is not None

    def check_token(self, candidate: str) -> bool:
        """Whether ``candidate`` is the server's token (never true for an empty token)."""
        if not self.token or not candidate:
            return False
        return hmac.compare_digest(candidate.encode(), self.token.encode())

    def check_login(self, candidate: str) -> bool:
        """Whether a login form's secret is the token or the password."""
        if self.check_token(candidate):
            return True
        return self._password_hash is not None and verify_password(self._password_hash, candidate)

    def new_xsrf(self) -> str:
        """A fresh ``_xsrf`` value: a nonce and its MAC, so other sites cannot plant one."""
        nonce = secrets.token_urlsafe(18)
        return f"{nonce}.{self._xsrf_mac(nonce)}"

    def valid_xsrf(self, value: str) -> bool:
        """Whether an ``_xsrf`` value was made by :meth:`new_xsrf` with this server's secret."""
        nonce, _, mac = value.partition(".")
        return bool(nonce) and hmac.compare_digest(mac.encode(), self._xsrf_mac(nonce).encode())

    def _xsrf_mac(self, nonce: str) -> str:
        digest = hmac.new(self._xsrf_key, nonce.encode(), hashlib.sha256).digest()
        return base64.urlsafe_b64encode(digest[:18]).decode()

    def token_from_header(self, header: str | None) -> str | None:
        """Extract the token from an ``Authorization`` header value."""
        if not header:
            return None
        match = _AUTH_HEADER.match(header)
        return match.group(1) if match else None

    def make_cookie(self, user: User) -> str:
        """A signed login cookie value for ``user``."""
        return self._serializer.dumps({"u": user.username, "f": self._fingerprint})

    def read_cookie(self, value: str) -> User | None:
        """The user a login cookie stands for, or None when it is forged, stale or expired."""
        try:
            data = self._serializer.loads(value, max_age=self.cookie_max_age)
        except BadSignature:
            return None
        if not isinstance(data, dict) or data.get("f") != self._fingerprint:
            return None
        return self.user if data.get("u") == self.user.username else None

    def authenticate(
        self, *, query_token: str | None, header: str | None, cookie: str | None
    ) -> tuple[User | None, AuthMethod | None]:
        """Check every credential a request carries; return the user and how they proved it."""
        if self.no_auth:
            return self.user, "none"
        if query_token is not None and self.check_token(query_token):
            return self.user, "token"
        header_token = self.token_from_header(header)
        if header_token is not None and self.check_token(header_token):
            return self.user, "token"
        if cookie and "." in cookie:  # signed cookies have dots; session ids never do
            user = self.read_cookie(cookie)
            if user is not None:
                return user, "cookie"
        return None, None

    async def identify(
        self,
        *,
        query_token: str | None,
        header: str | None,
        cookie: str | None,
        touch: bool = True,
    ) -> tuple[User | None, AuthMethod | None]:
        """:meth:`authenticate`, then, in multi-user mode, ask the identity provider;
        ``touch=False`` for the server's own checks (a session's idle deadline stays)."""
        user, method = self.authenticate(query_token=query_token, header=header, cookie=cookie)
        identity = self.identity
        if user is not None or identity is None:
            return user, method
        token = query_token or self.token_from_header(header)
        if token:
            user = await identity.user_for_token(token)
            if user is not None:
                return user, "token"
        if cookie:
            user = await identity.user_for_session(cookie, touch=touch)
            if user is not None:
                return user, "cookie"
        return None, None


def _os_username() -> str:
    try:
        return getpass.getuser()
    except (KeyError, OSError):  # no passwd entry (containers with arbitrary uids)
        return "jovyan"
