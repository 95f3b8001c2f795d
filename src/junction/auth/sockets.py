"""Open WebSockets and the credentials that opened them, closed when those are revoked or
expire.

A WebSocket is authenticated once, at its handshake, and may then stay open for days. In
multi-user mode the auth middleware hands every authenticated WebSocket to
:meth:`OpenSockets.serve`, which remembers the credentials it was opened with (in memory only,
never logged) and watches for :func:`credentials_changed`: the identity provider calls it
whenever it drops cached credentials (a revoked token, ended sessions, a disabled account, or
a revocation seen through the shared database). Each open socket's credentials are then checked
again, a few at a time, in the socket's own watcher task; a socket whose credentials no longer
stand for the same enabled user, with the same rights (admin flag, roles, groups, token scopes)
it had at the handshake, is closed with code 1008 (policy violation): the client gets a close
frame, the application a ``websocket.disconnect``. A demoted admin thus loses the sockets they
opened on other users' kernels, as the new rights would not have let them open those.
A credential with a known end (``User.expires``: an API token's expiry, a session's absolute
or idle end) has its socket checked again just after that end, by the same watcher task (no
timer when nothing ends): an expired credential closes it with 1008 "credentials expired". The
checks leave a session's idle deadline as it was, so an open tab does not keep its session
alive; a session used by other requests meanwhile has moved its end, and the socket waits for
the new one.
When a check cannot be made (the identity provider's database is down), the socket stays open
and is checked again after 1, 2, 4 ... (at most 30) seconds, until a check succeeds: a
revocation made during an outage still closes it once the database is back.

Single-user mode needs none of this (its one token lives as long as the server), so the
middleware only hands sockets over while an identity provider is attached.
"""

from __future__ import annotations

import logging
import math
import time
import weakref
from dataclasses import dataclass, field, replace

import anyio
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from junction.auth.identity import Authenticator, User
from junction.errors import HTTPError
from junction.logs import WarningThrottle

__all__ = ["REVOKED_CLOSE_CODE", "OpenSockets", "credentials_changed"]

log = logging.getLogger("junction.auth")

REVOKED_CLOSE_CODE = 1008
"""The close code of a WebSocket whose credentials were revoked (policy violation)."""

_REVOKED = "credentials revoked"
_EXPIRED = "credentials expired"
_PAST_EXPIRY = 0.1
"""Seconds after a credential's end before its socket is checked: a check made at the very
end may still find it valid."""
_CHECKS_AT_ONCE = 4
_FIRST_RETRY = 1.0
"""Seconds after a failed check before the next one; doubled after each failure."""
_LAST_RETRY = 30.0
"""The longest wait between two checks while they fail."""
_REGISTRIES: weakref.WeakSet[OpenSockets] = weakref.WeakSet()


_RECHECK_WARNINGS = WarningThrottle(log)


def _access(user: User) -> tuple[object, ...]:
    """Everything about ``user`` that grants access (display fields do not)."""
    scopes = None if user.scopes is None else frozenset(user.scopes)
    return (user.username, user.admin, frozenset(user.roles), frozenset(user.groups), scopes)


def credentials_changed() -> None:
    """Check every open WebSocket of this process again, in the background.

    Called by the identity provider after it dropped cached credentials; returns at once.
    """
    for registry in list(_REGISTRIES):
        registry.changed()


@dataclass(eq=False)
class _Credentials:
    query_token: str | None
    header: str | None
    cookie: str | None

    def __repr__(self) -> str:
        return "_Credentials(...)"  # never shown, not even in a traceback's locals


@dataclass(eq=False)
class _Socket:
    """One open WebSocket: how it was authenticated, and where its ASGI exchange stands."""

    user: User
    credentials: _Credentials
    receive_from: Receive
    send_to: Send
    due: anyio.Event = field(default_factory=anyio.Event)
    accepted: bool = False
    closed: bool = False
    revoked: bool = False
    receiving: anyio.CancelScope | None = None

    @property
    def expires(self) -> float | None:
        """When the socket's credentials end (epoch seconds), as last checked; None: never."""
        return self.user.expires

    async def receive(self) -> Message:
        """The client's next message; a 1008 disconnect once the credentials are revoked."""
        if not self.revoked:
            with anyio.CancelScope() as scope:
                self.receiving = scope
                try:
                    message = await self.receive_from()
                finally:
                    self.receiving = None
                if message["type"] == "websocket.disconnect":
                    self.closed = True
                return message
        return {"type": "websocket.disconnect", "code": REVOKED_CLOSE_CODE}

    async def send(self, message: Message) -> None:
        """Pass the application's message on; nothing more once the socket was revoked."""
        kind = message["type"]
        if self.revoked:
            if kind == "websocket.accept" and not self.closed:
                self.closed = True  # revoked during the handshake: refuse it
                await self.send_to(_close_message())
            return
        if kind == "websocket.accept":
            self.accepted = True
        elif kind in ("websocket.close", "websocket.http.response.start"):
            self.closed = True
        await self.send_to(message)

    async def revoke(self, reason: str = _REVOKED) -> None:
        """Close with 1008 and ``reason`` (once, when accepted and still open) and end the
        app's receive."""
        if self.revoked:
            return
        self.revoked = True
        if self.accepted and not self.closed:
            self.closed = True
            try:
                with anyio.fail_after(10):
                    await self.send_to(_close_message(reason))
            except Exception as exc:  # the client went away meanwhile: nothing to close
                log.debug("closing a revoked WebSocket failed: %s", type(exc).__name__)
        if self.receiving is not None:
            self.receiving.cancel()


def _close_message(reason: str = _REVOKED) -> Message:
    return {"type": "websocket.close", "code": REVOKED_CLOSE_CODE, "reason": reason}


class OpenSockets:
    """The open, authenticated WebSockets of one server (one per :class:`Authenticator`)."""

    def __init__(self, auth: Authenticator) -> None:
        self.auth = auth
        self._open: set[_Socket] = set()
        self._limiter: anyio.CapacityLimiter | None = None
        _REGISTRIES.add(self)

    def __len__(self) -> int:
        return len(self._open)

    def changed(self) -> None:
        """Have every open socket's credentials checked again (see the module docstring)."""
        for socket in self._open:
            socket.due.set()

    async def serve(
        self,
        app: ASGIApp,
        scope: Scope,
        receive: Receive,
        send: Send,
        *,
        user: User,
        query_token: str | None,
        header: str | None,
        cookie: str | None,
    ) -> None:
        """Run ``app`` for one WebSocket authenticated as ``user`` with these credentials,
        closing it if they are revoked or expire (``user.expires``), or their user's rights
        change, while it is open."""
        socket = _Socket(user, _Credentials(query_token, header, cookie), receive, send)
        if self._limiter is None:
            self._limiter = anyio.CapacityLimiter(_CHECKS_AT_ONCE)
        limiter = self._limiter
        self._open.add(socket)
        failure: Exception | None = None
        try:
            async with anyio.create_task_group() as tg:
                tg.start_soon(self._watch, socket, limiter)
                try:
                    await app(scope, socket.receive, socket.send)
                except Exception as exc:  # raised as is below, not as an exception group
                    failure = exc
                finally:
                    tg.cancel_scope.cancel()
        finally:
            self._open.discard(socket)
            if not self._open:
                self._limiter = None
        if failure is not None:
            raise failure

    async def _watch(self, socket: _Socket, limiter: anyio.CapacityLimiter) -> None:
        retry: float | None = None  # while checks fail: seconds until the next one
        while not socket.revoked:
            wait = math.inf if retry is None else retry
            if socket.expires is not None:
                wait = min(wait, max(socket.expires - time.time(), 0.0) + _PAST_EXPIRY)
            with anyio.move_on_after(wait):
                await socket.due.wait()
            socket.due = anyio.Event()  # a change from now on asks for one more check
            async with limiter:
                valid = await self._still_valid(socket)
            if valid is None:
                retry = _FIRST_RETRY if retry is None else min(2 * retry, _LAST_RETRY)
            elif valid:
                retry = None
            else:
                expired = socket.expires is not None and time.time() >= socket.expires
                await socket.revoke(_EXPIRED if expired else _REVOKED)

    async def _still_valid(self, socket: _Socket) -> bool | None:
        """Whether the socket's credentials still stand for its user with the same rights;
        None when that cannot be told right now."""
        credentials = socket.credentials
        try:
            user, _ = await self.auth.identify(
                query_token=credentials.query_token,
                header=credentials.header,
                cookie=credentials.cookie,
                touch=False,  # an open tab must not keep its session alive
            )
        except HTTPError as exc:
            # Cannot tell right now (database down): keep the socket, try again later.
            _RECHECK_WARNINGS.warning(
                "cannot check an open WebSocket's credentials again: %s", exc.message
            )
            return None
        except Exception:
            _RECHECK_WARNINGS.warning(
                "checking an open WebSocket's credentials again failed", exc_info=True
            )
            return None
        if user is None or _access(user) != _access(socket.user):
            return False
        now = time.time()
        if user.expires is not None and user.expires < now:
            # Valid past its own end (a provider's quirk): trust the check, and check again
            # in a second rather than at once, again and again.
            user = replace(user, expires=now + _FIRST_RETRY)
        socket.user = user  # its end may have moved: a session used by other requests
        return True
