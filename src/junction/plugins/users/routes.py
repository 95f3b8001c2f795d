"""HTTP routes of ``/api/users``: administrators manage everyone, users their own tokens
and sessions. Another user's account looks missing (404) to a non-administrator."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Annotated

from fastapi import APIRouter, Body, Response
from starlette.requests import HTTPConnection

from junction.auth.identity import User
from junction.auth.middleware import current_user
from junction.errors import BadRequest, Forbidden
from junction.events import emit_event
from junction.eventschemas import AUTH_EVENTS
from junction.plugin import use
from junction.plugins.users.models import (
    NewToken,
    NewUser,
    Revoked,
    SessionModel,
    TokenModel,
    TokenRequest,
    UserChange,
    UserModel,
)
from junction.plugins.users.service import USERS, UserNotFound, UsersService
from junction.services import AUTH

__all__ = ["is_admin", "require_admin", "router"]

router = APIRouter(tags=["users"])

Users = Annotated[UsersService, use(USERS)]


def is_admin(conn: HTTPConnection, user: User) -> bool:
    """Whether ``user`` may manage accounts (the ``admin:users`` scope)."""
    auth = conn.app.state.services.get(AUTH)
    return bool(auth.authorizer.is_authorized(user, "admin:users", ""))


def require_admin(conn: HTTPConnection) -> User:
    """The current user, when an administrator; raises :class:`Forbidden` otherwise."""
    user = current_user(conn.scope)
    if not is_admin(conn, user):
        raise Forbidden("Only administrators may manage users")
    return user


def _self_or_admin(conn: HTTPConnection, name: str) -> User:
    user = current_user(conn.scope)
    if user.username != name and not is_admin(conn, user):
        raise UserNotFound(name)
    if user.scopes is not None and user.username == name and not is_admin(conn, user):
        # A scoped token must not mint itself wider tokens nor end its owner's sessions.
        raise Forbidden("A token limited to scopes cannot manage its owner's credentials")
    return user


@router.get("/api/users")
async def list_users(conn: HTTPConnection, users: Users) -> list[UserModel]:
    """Every account (administrators only)."""
    require_admin(conn)
    return [UserModel.of(account) for account in await users.users()]


@router.post("/api/users", status_code=201)
async def add_user(
    conn: HTTPConnection, users: Users, body: Annotated[NewUser, Body()]
) -> UserModel:
    """Create a local account (administrators only)."""
    require_admin(conn)
    account = await users.add_user(
        body.name,
        admin=body.admin,
        groups=body.groups,
        roles=body.roles,
        password=body.password,
        display_name=body.display_name,
    )
    return UserModel.of(account)


@router.get("/api/users/{name}")
async def get_user(conn: HTTPConnection, name: str, users: Users) -> UserModel:
    """One account: administrators see anyone, users themselves."""
    _self_or_admin(conn, name)
    return UserModel.of(await users.get(name))


@router.patch("/api/users/{name}")
async def change_user(
    conn: HTTPConnection, name: str, users: Users, body: Annotated[UserChange, Body()]
) -> UserModel:
    """Enable, disable, change roles or password (administrators only)."""
    user = require_admin(conn)
    if body.enabled is False and name == user.username:
        raise BadRequest("administrators cannot disable their own account")
    if body.password is not None:
        await users.set_password(name, body.password or None)
    if body.roles is not None or body.admin is not None:
        setter = getattr(users, "set_roles", None)
        if setter is None:
            raise BadRequest("this users service cannot change roles")
        await setter(name, roles=body.roles, admin=body.admin)
    if body.enabled is not None:
        await users.set_enabled(name, body.enabled)
    return UserModel.of(await users.get(name))


@router.post("/api/users/{name}/revoke")
async def revoke_user(conn: HTTPConnection, name: str, users: Users) -> Revoked:
    """End every session and revoke every token of a user (administrators only)."""
    require_admin(conn)
    sessions, tokens = await users.revoke(name)
    return Revoked(sessions=sessions, tokens=tokens)


@router.get("/api/users/{name}/sessions")
async def list_sessions(conn: HTTPConnection, name: str, users: Users) -> list[SessionModel]:
    """A user's open browser sessions."""
    _self_or_admin(conn, name)
    return [SessionModel.of(row) for row in await users.sessions(name)]


@router.delete("/api/users/{name}/sessions")
async def end_sessions(conn: HTTPConnection, name: str, users: Users) -> Revoked:
    """Log out everywhere: end every browser session of the user (tokens stay)."""
    _self_or_admin(conn, name)
    sessions, _ = await users.revoke(name, tokens=False)
    return Revoked(sessions=sessions, tokens=0)


@router.get("/api/users/{name}/tokens")
async def list_tokens(conn: HTTPConnection, name: str, users: Users) -> list[TokenModel]:
    """A user's API tokens, without their secrets."""
    _self_or_admin(conn, name)
    return [TokenModel.of(row) for row in await users.tokens(name)]


@router.post("/api/users/{name}/tokens", status_code=201)
async def issue_token(
    conn: HTTPConnection,
    name: str,
    users: Users,
    body: Annotated[TokenRequest | None, Body()] = None,
) -> NewToken:
    """Make an API token; the response is the only time its secret is shown."""
    _self_or_admin(conn, name)
    request = body or TokenRequest()
    expires = None
    if request.expires_in is not None:
        expires = datetime.now(UTC) + timedelta(seconds=request.expires_in)
    token, row = await users.issue_token(
        name, note=request.note, scopes=request.scopes, expires=expires
    )
    emit_event(conn, AUTH_EVENTS, {"action": "token_created", "token_id": row.id}, username=name)
    return NewToken(token=token, **TokenModel.of(row).model_dump())


@router.delete("/api/users/{name}/tokens/{token_id}", status_code=204)
async def revoke_token(conn: HTTPConnection, name: str, token_id: int, users: Users) -> Response:
    """Revoke one token, at once."""
    _self_or_admin(conn, name)
    await users.revoke_token(name, token_id)
    emit_event(conn, AUTH_EVENTS, {"action": "token_revoked", "token_id": token_id}, username=name)
    return Response(status_code=204)
