"""Who may do what: one authorizer every plugin asks, in jupyter_server's vocabulary.

Actions are jupyter_server's (``read``, ``write``, ``execute``) and so are the resources
(``contents``, ``kernels``, ``sessions``, ``terminals``, ``kernelspecs``, ``events``,
``nbconvert``, ``config``, ``api``, ``server``); a plugin's own resources are named
``<plugin>:<resource>``. A grant implies the weaker actions: ``execute`` ⊇ ``write`` ⊇ ``read``.

Grants are written as JupyterHub writes scopes, so the same words work under a Hub:

- ``<action>:<resource>``, ``*`` for any action or resource (``execute:kernels``, ``read:*``);
- a ``!user`` suffix limits a grant to objects the user owns (``execute:kernels!user``);
- ``custom:jupyter_server:<action>:<resource>`` is read as ``<action>:<resource>``;
  ``access:servers`` as ``execute:*!user``;
- admin scopes keep JupyterHub's names (``admin:users``, ``list:users``, ``tokens``).

Roles are named sets of grants (:data:`ROLES`). In single-user mode :class:`TokenHolder`
allows everything, as Junction always did.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    from junction.auth.identity import User

__all__ = [
    "ACTIONS",
    "RESOURCES",
    "ROLES",
    "Authorizer",
    "Grant",
    "RoleAuthorizer",
    "TokenHolder",
    "parse_grants",
    "required_permission",
]

ACTIONS = ("read", "write", "execute")
"""jupyter_server's actions, weakest first."""

RESOURCES = (
    "api",
    "config",
    "contents",
    "csp",
    "events",
    "kernels",
    "kernelspecs",
    "nbconvert",
    "server",
    "sessions",
    "terminals",
)
"""jupyter_server's resources."""

_ADMIN_SCOPES = ("admin:users", "list:users", "read:users:name", "admin:groups", "tokens")

ROLES: Mapping[str, tuple[str, ...]] = {
    "admin": ("execute:*", *_ADMIN_SCOPES),
    "user": (*(f"execute:{r}!user" for r in RESOURCES if r != "server"), "read:server!user"),
    "viewer": tuple(f"read:{r}!user" for r in RESOURCES),
}
"""Built-in roles: ``admin`` may do anything to anyone's objects and manage users; ``user``
everything on their own objects except stopping the server; ``viewer`` reads their own."""


class Authorizer(Protocol):
    """Decides whether a user may take an action on a resource; asked by every plugin.

    Called on the hot path of every request: implementations answer from memory.
    """

    def is_authorized(self, user: User, action: str, resource: str) -> bool:
        """Whether ``user`` may take ``action`` on some objects of ``resource``."""
        ...

    def may_access(self, user: User, action: str, resource: str, owner: str | None) -> bool:
        """Whether ``user`` may take ``action`` on one object of ``resource`` owned by
        ``owner`` (a username; None for objects nobody owns). Denied objects should look
        missing to the caller (404), so their ids leak nothing."""
        ...


class TokenHolder:
    """Single-user mode: whoever holds the token (or the password) may do everything."""

    def is_authorized(self, user: User, action: str, resource: str) -> bool:
        """Always True."""
        return True

    def may_access(self, user: User, action: str, resource: str, owner: str | None) -> bool:
        """Always True."""
        return True


@dataclass(frozen=True)
class Grant:
    """One parsed grant: an action (or ``*``), a resource (or ``*``), own objects only?"""

    action: str
    resource: str
    own_only: bool = False

    def covers(self, action: str, resource: str) -> bool:
        """Whether this grant allows ``action`` on ``resource`` (ownership aside)."""
        if self.resource not in ("*", resource):
            return False
        if self.action in ("*", action):
            return True
        if self.action in ACTIONS and action in ACTIONS:
            return ACTIONS.index(action) <= ACTIONS.index(self.action)
        return False


def parse_grants(scopes: Iterable[str]) -> frozenset[Grant]:
    """Parse scope strings (see the module docstring); unknown words grant nothing."""
    grants: set[Grant] = set()
    for raw in scopes:
        scope, _, filt = raw.partition("!")
        own_only = filt == "user"
        if filt and not own_only:
            continue  # other filters (!group=, !server=) are not supported: grant nothing
        if scope == "access:servers":
            grants.add(Grant("execute", "*", own_only=True))
            continue
        if scope.startswith("custom:jupyter_server:"):
            scope = scope.removeprefix("custom:jupyter_server:")
        action, sep, resource = scope.partition(":")
        if action in (*ACTIONS, "*") and sep:
            grants.add(Grant(action, resource, own_only))
        else:
            grants.add(Grant(scope, "", own_only))  # a named admin scope such as "tokens"
    return frozenset(grants)


class RoleAuthorizer:
    """Multi-user mode: each user's grants come from their roles, cut down by token scopes.

    ``roles`` maps role names to scopes (the built-in :data:`ROLES` by default). A user whose
    ``admin`` flag is set has the ``admin`` role. Parsed grants are cached per role set.
    """

    def __init__(self, roles: Mapping[str, Iterable[str]] = ROLES) -> None:
        self._roles = {name: parse_grants(scopes) for name, scopes in roles.items()}
        self._cache: dict[tuple[tuple[str, ...], bool], frozenset[Grant]] = {}
        self._scoped: dict[tuple[str, ...], frozenset[Grant]] = {}

    def grants(self, user: User) -> frozenset[Grant]:
        """Every grant the user's roles give."""
        key = (user.roles, user.admin)
        found = self._cache.get(key)
        if found is None:
            names = {*user.roles, *(("admin",) if user.admin else ())}
            found = frozenset().union(*(self._roles.get(name, frozenset()) for name in names))
            self._cache[key] = found
        return found

    def _matching(self, user: User, action: str, resource: str) -> list[Grant]:
        matching = [g for g in self.grants(user) if g.covers(action, resource)]
        if user.scopes is not None:  # an API token limited to some scopes
            limited = self._scoped.get(user.scopes)
            if limited is None:
                if len(self._scoped) >= 1024:
                    self._scoped.clear()
                limited = self._scoped[user.scopes] = parse_grants(user.scopes)
            if not any(g.covers(action, resource) for g in limited):
                return []
            if all(g.own_only for g in limited if g.covers(action, resource)):
                matching = [Grant(g.action, g.resource, True) for g in matching]
        return matching

    def is_authorized(self, user: User, action: str, resource: str) -> bool:
        """Whether some grant of the user covers ``action`` on ``resource``."""
        return bool(self._matching(user, action, resource))

    def may_access(self, user: User, action: str, resource: str, owner: str | None) -> bool:
        """Whether a grant covers it, and either is unlimited or ``owner`` is the user."""
        return any(
            not g.own_only or owner == user.username for g in self._matching(user, action, resource)
        )

    def has_scope(self, user: User, scope: str) -> bool:
        """Whether the user holds a named admin scope (``admin:users``, ``tokens``)."""
        return self.is_authorized(user, scope, "")


_AREAS: Mapping[str, str] = {
    "api/contents": "contents",
    "files": "contents",
    "view": "contents",
    "api/kernels": "kernels",
    "api/sessions": "sessions",
    "api/terminals": "terminals",
    "terminals": "terminals",
    "api/kernelspecs": "kernelspecs",
    "kernelspecs": "kernelspecs",
    "api/events": "events",
    "api/nbconvert": "nbconvert",
    "nbconvert": "nbconvert",
    "api/config": "config",
    "api/shutdown": "server",
    "api/status": "api",
    "api": "api",
}


def required_permission(local_path: str, method: str) -> tuple[str, str] | None:
    """jupyter_server's ``(action, resource)`` for a request, or None for other routes.

    ``local_path`` is the path below the base URL; ``method`` is the HTTP method or
    ``WEBSOCKET``. GET, HEAD and OPTIONS read, other methods write, WebSockets execute
    (as jupyter_server's ``HTTP_METHOD_TO_AUTH_ACTION`` and its WebSocket handlers).
    """
    first, _, rest = local_path.partition("/")
    if first == "api" and rest:
        resource = _AREAS.get(f"api/{rest.partition('/')[0]}")
    else:
        resource = _AREAS.get(first)
    if resource is None:
        return None
    if method == "WEBSOCKET":
        return "execute", resource
    return ("read" if method in ("GET", "HEAD", "OPTIONS") else "write"), resource
