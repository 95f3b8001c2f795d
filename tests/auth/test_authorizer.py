"""The authorizer: grants, roles, token scopes, ownership, and the path-to-permission map."""

from __future__ import annotations

import pytest

from junction.auth.authorizer import (
    Grant,
    RoleAuthorizer,
    TokenHolder,
    parse_grants,
    required_permission,
)
from junction.auth.identity import User

ANA = User.named("ana", roles=("user",))
BOB = User.named("bob", roles=("user",))
ROOT = User.named("root", roles=("user",), admin=True)
VERA = User.named("vera", roles=("viewer",))


def test_token_holder_allows_everything() -> None:
    holder = TokenHolder()
    assert holder.is_authorized(ANA, "write", "server")
    assert holder.may_access(ANA, "execute", "kernels", "bob")


@pytest.mark.parametrize(
    ("scope", "expected"),
    [
        ("execute:kernels", Grant("execute", "kernels")),
        ("read:*!user", Grant("read", "*", own_only=True)),
        ("custom:jupyter_server:write:contents", Grant("write", "contents")),
        ("access:servers", Grant("execute", "*", own_only=True)),
        ("tokens", Grant("tokens", "")),
    ],
)
def test_scopes_parse_as_hub_and_jupyter_server_write_them(scope: str, expected: Grant) -> None:
    assert parse_grants([scope]) == {expected}


def test_unsupported_filters_grant_nothing() -> None:
    assert parse_grants(["read:contents!group=staff"]) == frozenset()


def test_stronger_actions_imply_weaker_ones() -> None:
    grant = Grant("write", "contents")
    assert grant.covers("read", "contents")
    assert grant.covers("write", "contents")
    assert not grant.covers("execute", "contents")
    assert not grant.covers("read", "kernels")


def test_users_own_their_objects_and_nobody_elses() -> None:
    authorizer = RoleAuthorizer()
    assert authorizer.is_authorized(ANA, "execute", "kernels")
    assert authorizer.may_access(ANA, "execute", "kernels", "ana")
    assert not authorizer.may_access(ANA, "read", "kernels", "bob")
    assert not authorizer.may_access(BOB, "read", "kernels", "ana")
    assert not authorizer.may_access(ANA, "read", "kernels", None)


def test_only_admins_stop_the_server_and_manage_users() -> None:
    authorizer = RoleAuthorizer()
    assert not authorizer.is_authorized(ANA, "write", "server")
    assert authorizer.is_authorized(ANA, "read", "server")
    assert authorizer.is_authorized(ROOT, "write", "server")
    assert authorizer.may_access(ROOT, "execute", "kernels", "ana")
    assert authorizer.has_scope(ROOT, "admin:users")
    assert not authorizer.has_scope(ANA, "admin:users")


def test_viewers_only_read() -> None:
    authorizer = RoleAuthorizer()
    assert authorizer.is_authorized(VERA, "read", "contents")
    assert not authorizer.is_authorized(VERA, "write", "contents")
    assert not authorizer.is_authorized(VERA, "execute", "kernels")


def test_token_scopes_narrow_the_owners_rights() -> None:
    authorizer = RoleAuthorizer()
    reader = User.named("ana", roles=("user",), scopes=("read:contents",))
    assert authorizer.is_authorized(reader, "read", "contents")
    assert not authorizer.is_authorized(reader, "write", "contents")
    assert not authorizer.is_authorized(reader, "execute", "kernels")
    # Scopes never widen: a user's token asking for the server gets nothing more.
    greedy = User.named("ana", roles=("user",), scopes=("write:server", "admin:users"))
    assert not authorizer.is_authorized(greedy, "write", "server")
    assert not authorizer.has_scope(greedy, "admin:users")
    # An admin's token limited to own objects cannot reach others' kernels.
    own = User.named("root", admin=True, scopes=("execute:kernels!user",))
    assert authorizer.may_access(own, "execute", "kernels", "root")
    assert not authorizer.may_access(own, "execute", "kernels", "ana")


def test_unknown_roles_grant_nothing() -> None:
    nobody = User.named("eve", roles=("wizard",))
    assert not RoleAuthorizer().is_authorized(nobody, "read", "contents")


@pytest.mark.parametrize(
    ("path", "method", "expected"),
    [
        ("api/contents/a/b.ipynb", "GET", ("read", "contents")),
        ("api/contents", "PUT", ("write", "contents")),
        ("files/a.txt", "GET", ("read", "contents")),
        ("api/kernels/abc/channels", "WEBSOCKET", ("execute", "kernels")),
        ("api/kernels", "POST", ("write", "kernels")),
        ("api/sessions", "OPTIONS", ("read", "sessions")),
        ("api/terminals", "POST", ("write", "terminals")),
        ("terminals/websocket/1", "WEBSOCKET", ("execute", "terminals")),
        ("api/kernelspecs", "GET", ("read", "kernelspecs")),
        ("kernelspecs/python3/logo-64x64.png", "GET", ("read", "kernelspecs")),
        ("api/events/subscribe", "WEBSOCKET", ("execute", "events")),
        ("api/shutdown", "POST", ("write", "server")),
        ("api/me", "GET", None),
        ("api", "GET", ("read", "api")),
        ("lab/tree/a.ipynb", "GET", None),
        ("api/users", "GET", None),
    ],
)
def test_paths_map_to_jupyter_server_permissions(
    path: str, method: str, expected: tuple[str, str] | None
) -> None:
    assert required_permission(path, method) == expected
