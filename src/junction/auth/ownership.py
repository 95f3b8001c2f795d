"""Per-object access for plugin routes: whether the caller may see one kernel, terminal or
session (in multi-user mode its owner or an admin; in single-user mode the token holder)."""

from __future__ import annotations

from starlette.requests import HTTPConnection

from junction.auth.middleware import current_user
from junction.services import AUTH

__all__ = ["may_access", "method_action"]


def may_access(conn: HTTPConnection, resource: str, object_id: str, action: str) -> bool:
    """Whether the caller of ``conn`` may take ``action`` on the object ``object_id`` of
    ``resource`` (the authorizer decides, given the owner its plugin recorded)."""
    auth = conn.app.state.services.get(AUTH)
    return bool(auth.may_access(current_user(conn.scope), action, resource, object_id))


def method_action(conn: HTTPConnection) -> str:
    """The action a request on one object asks for: ``read`` for GET and HEAD, else ``write``."""
    return "read" if conn.scope.get("method") in ("GET", "HEAD") else "write"
