"""The gate every request passes: authentication, XSRF, WebSocket origin, token exchange.

Runs as plain ASGI middleware (no per-request Request objects on the hot path). Outcomes:

- public paths (login, logout, plugin-declared static prefixes) pass untouched;
- a valid credential stores the user in ``scope["state"]["user"]`` and passes;
- a page ``GET`` with a valid ``?token=`` is redirected to the same URL without the token,
  with a login cookie set, so the token does not stay in the address bar or history (in
  multi-user mode, a browser's valid session of another user is kept, and the token merely
  dropped, unless ``Sec-Fetch-Site`` says the navigation started in the browser or on our
  pages: a link on another site cannot swap the session);
- a cookie-authenticated unsafe request without the matching ``X-XSRFToken`` header gets 403;
- a WebSocket from a foreign ``Origin`` is refused with 403;
- in multi-user mode, a request the authorizer refuses (jupyter_server's action and resource
  for the path, see :func:`~junction.auth.authorizer.required_permission`) gets 403;
- anything else: pages redirect to ``/login?next=...``, API calls get 403 (or 401) JSON;
- when credentials cannot be checked right now (the identity provider's database is down),
  the request gets that error's status and JSON body (503), without a traceback; the log
  gets one warning a minute at most, however many requests fail.

In multi-user mode an authenticated WebSocket is served through
:class:`~junction.auth.sockets.OpenSockets`, which closes it (1008) once its credentials are
revoked or its user's rights change.
"""

from __future__ import annotations

import hmac
import logging
import re
from collections.abc import Sequence
from contextvars import ContextVar
from typing import Any
from urllib.parse import parse_qsl, quote, urlencode, urlsplit

from starlette.datastructures import Headers
from starlette.requests import cookie_parser
from starlette.responses import JSONResponse, RedirectResponse, Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from junction.auth.authorizer import required_permission
from junction.auth.identity import Authenticator, User
from junction.auth.sockets import OpenSockets
from junction.errors import Forbidden, HTTPError
from junction.logs import WarningThrottle
from junction.services import ServerState

__all__ = [
    "REQUEST_USER",
    "XSRF_COOKIE",
    "AuthMiddleware",
    "current_user",
    "deny",
    "origin_allowed",
]

log = logging.getLogger("junction.auth")
_OUTAGE_WARNINGS = WarningThrottle(log)

REQUEST_USER: ContextVar[User | None] = ContextVar("junction_request_user", default=None)
"""The user of the request being served, for code that gets no request (page config
providers); None outside requests. Routes use :func:`current_user`."""

XSRF_COOKIE = "_xsrf"
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
_PUBLIC_EXACT = frozenset({"login", "logout", "favicon.ico", "api/security/csp-report"})


def current_user(scope: Scope) -> User:
    """The user the gate stored for this request (routes use the ``CurrentUser`` dependency).

    The gate lets an unauthenticated ``OPTIONS`` through (CORS preflights); a route that
    needs a user refuses it here with the gate's own 403.
    """
    user: User | None = scope.get("state", {}).get("user")
    if user is None:
        raise Forbidden("Invalid or missing authentication token")
    return user


def origin_allowed(origin: str, host: str | None, allow_origin: str, pattern: str) -> bool:
    """Whether a browser ``Origin`` may talk to this server: same host, or configured CORS."""
    netloc = urlsplit(origin).netloc
    if host is not None and netloc == host:
        return True
    if allow_origin == "*" or (allow_origin and origin == allow_origin):
        return True
    return bool(pattern) and re.fullmatch(pattern, origin) is not None


async def deny(
    scope: Scope,
    receive: Receive,
    send: Send,
    status: int,
    message: str,
    *,
    body: dict[str, Any] | None = None,
) -> None:
    """Refuse an HTTP request or a WebSocket handshake with a JSON error body (``body``, or
    ``message`` with the status's reason)."""
    if body is None:
        body = {"message": message, "reason": _REASONS.get(status, "Forbidden")}
    response = JSONResponse(body, status_code=status)
    if scope["type"] == "websocket":
        if "websocket.http.response" in scope.get("extensions", {}):
            await send(
                {
                    "type": "websocket.http.response.start",
                    "status": status,
                    "headers": response.raw_headers,
                }
            )
            await send({"type": "websocket.http.response.body", "body": response.body})
        else:  # pragma: no cover - every server we run supports denial responses
            await send({"type": "websocket.close", "code": 1008, "reason": message[:120]})
        return
    await response(scope, receive, send)


_REASONS = {401: "Unauthorized", 403: "Forbidden", 404: "Not Found"}


class AuthMiddleware:
    """Authenticate every request under the base URL; see the module docstring."""

    def __init__(
        self,
        app: ASGIApp,
        *,
        auth: Authenticator,
        state: ServerState,
        public_paths: Sequence[str] = (),
    ) -> None:
        self.app = app
        self.auth = auth
        self.state = state
        self.settings = auth.settings
        self.base = self.settings.base_url
        self.public_exact = _PUBLIC_EXACT | {p for p in public_paths if not p.endswith("/")}
        self.public_prefixes = ("static/", *(p for p in public_paths if p.endswith("/")))
        secure = "; Secure" if self.settings.certfile or self.settings.cookie_secure else ""
        self._cookie_attrs = f"; Path={self.base}; SameSite=Lax{secure}"
        self.sockets = OpenSockets(auth)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] not in ("http", "websocket"):
            await self.app(scope, receive, send)
            return
        path: str = scope["path"]
        if not path.startswith(self.base):
            await deny(scope, receive, send, 404, "Not Found")
            return
        local = path[len(self.base) :]
        if local in self.public_exact or (
            local.startswith(self.public_prefixes) and ".." not in local.split("/")
        ):
            await self.app(scope, receive, send)
            return

        headers = Headers(scope=scope)
        cookies = _cookies(headers.get("cookie"))
        query = dict(parse_qsl(scope.get("query_string", b"").decode("latin-1")))
        query_token = query.get("token")
        header = headers.get("authorization")
        cookie = cookies.get(self.auth.cookie_name)
        try:
            user, method = await self.auth.identify(
                query_token=query_token, header=header, cookie=cookie
            )
        except HTTPError as exc:
            await self._cannot_identify(scope, receive, send, exc)
            return
        is_ws = scope["type"] == "websocket"
        http_method = "WEBSOCKET" if is_ws else scope["method"]

        if is_ws:
            origin = self._foreign_origin(headers)
            if origin:
                await deny(scope, receive, send, 403, f"WebSocket origin {origin} is not allowed")
                return

        if user is None:
            if http_method == "OPTIONS":
                await self.app(scope, receive, send)
                return
            if not is_ws and self._is_page(local, http_method, headers):
                target = quote(path + ("?" + _without_token(scope) if query else ""), safe="/?=&")
                location = f"{self.base}login?next={quote(target, safe='')}"
                await RedirectResponse(location, status_code=302)(scope, receive, send)
                return
            status = self.settings.unauthenticated_status
            await deny(scope, receive, send, status, "Invalid or missing authentication token")
            return

        if method in ("cookie", "none") and http_method not in SAFE_METHODS and not is_ws:
            # Browsers attach cookies to cross-site requests (and a no-auth server has no
            # credential at all), so an unsafe request must prove it comes from our pages:
            # a same-origin Origin when the browser sent one, and the signed _xsrf pair.
            origin = self._foreign_origin(headers)
            if origin:
                await deny(scope, receive, send, 403, f"Cross-origin request from {origin}")
                return
            if not self.settings.disable_check_xsrf:
                problem = self._xsrf_problem(cookies.get(XSRF_COOKIE), headers, http_method)
                if problem:
                    await deny(scope, receive, send, 403, problem)
                    return

        if self.auth.identity is not None:
            needed = required_permission(local, http_method)
            if needed is not None and not self.auth.authorizer.is_authorized(user, *needed):
                action, resource = needed
                await deny(scope, receive, send, 403, f"Not allowed to {action} {resource}")
                return

        if (
            "token" in query
            and method == "token"
            and (user is self.auth.user or (self.auth.identity is not None and user.scopes is None))
            and not is_ws
            and self._is_page(local, http_method, headers)
        ):
            try:
                keep = await self._keeps_other_session(user, cookies, headers)
            except HTTPError as exc:
                await self._cannot_identify(scope, receive, send, exc)
                return
            if keep:
                # Drop the token and carry on as the browser's current user.
                await self._exchange_token(scope, receive, send, None)
                return
            await self._exchange_token(scope, receive, send, user)
            return

        scope.setdefault("state", {})["user"] = user
        REQUEST_USER.set(user)
        scope["state"]["auth_method"] = method  # read by junction.auth.xssi
        if not local.startswith("api/status") and "no_track_activity" not in query:
            self.state.touch()
        if is_ws and self.auth.identity is not None and method != "none":
            await self.sockets.serve(
                self.app,
                scope,
                receive,
                send,
                user=user,
                query_token=query_token,
                header=header,
                cookie=cookie,
            )
            return
        xsrf = cookies.get(XSRF_COOKIE)
        if is_ws or http_method != "GET" or (xsrf and self.auth.valid_xsrf(xsrf)):
            await self.app(scope, receive, send)
            return
        await self.app(scope, receive, self._with_xsrf_cookie(send))

    async def _cannot_identify(
        self, scope: Scope, receive: Receive, send: Send, exc: HTTPError
    ) -> None:
        """Answer a request whose credentials cannot be checked right now (the identity
        provider's database is down): the error's status and body, and one log line a
        minute at most."""
        _OUTAGE_WARNINGS.warning("cannot check the credentials of a request: %s", exc.message)
        await deny(scope, receive, send, exc.status_code, exc.message, body=exc.body())

    def _is_page(self, local: str, method: str, headers: Headers) -> bool:
        if method not in ("GET", "HEAD") or local.startswith("api/") or local == "api":
            return False
        return local == "" or "text/html" in headers.get("accept", "")

    def _foreign_origin(self, headers: Headers) -> str | None:
        """The request's ``Origin`` when a browser sent one that may not talk to us."""
        origin = headers.get("origin")
        if origin and not origin_allowed(
            origin, headers.get("host"), self.settings.allow_origin, self.settings.allow_origin_pat
        ):
            return origin
        return None

    def _xsrf_problem(self, cookie: str | None, headers: Headers, method: str) -> str | None:
        supplied = headers.get("x-xsrftoken") or headers.get("x-csrftoken")
        if not supplied:
            return f"'_xsrf' argument missing from {method}"
        if (
            not cookie
            or not hmac.compare_digest(supplied.encode(), cookie.encode())
            or not self.auth.valid_xsrf(cookie)
        ):
            return f"XSRF cookie does not match {method} argument"
        return None

    async def _keeps_other_session(
        self, user: User, cookies: dict[str, str], headers: Headers
    ) -> bool:
        """Whether a page URL's token must not replace the browser's session.

        A link on another site could otherwise log the browser in as the token's owner
        (session swap). A valid session of another user is kept unless the navigation
        started in this browser itself (address bar, bookmark) or on our own pages.
        """
        if self.auth.identity is None:
            return False  # single user: every credential stands for the same person
        cookie = cookies.get(self.auth.cookie_name)
        if not cookie:
            return False
        current, _ = await self.auth.identify(query_token=None, header=None, cookie=cookie)
        if current is None or current.username == user.username:
            return False
        return headers.get("sec-fetch-site") not in ("none", "same-origin")

    async def _exchange_token(
        self, scope: Scope, receive: Receive, send: Send, user: User | None
    ) -> None:
        """Redirect to the URL without its token; with ``user``, log the browser in."""
        # Collapse leading slashes: "//evil.example" would be a scheme-relative redirect.
        location = "/" + scope["path"].lstrip("/")
        rest = _without_token(scope)
        if rest:
            location += "?" + rest
        response = RedirectResponse(location, status_code=302)
        if user is None:
            await response(scope, receive, send)
            return
        if user is self.auth.user or self.auth.identity is None:
            self._set_login_cookie(response, self.auth.make_cookie(user))
        else:
            # A person's own API token in a page URL: open a server-side session for them,
            # as logging in would (only unscoped tokens get here: a session has full rights).
            headers = Headers(scope=scope)
            client = scope.get("client")
            session = await self.auth.identity.open_session(
                user,
                agent=headers.get("user-agent", ""),
                address=client[0] if client else "",
            )
            self._set_login_cookie(response, session)
        response.raw_headers.append(
            (
                b"set-cookie",
                f"{XSRF_COOKIE}={self.auth.new_xsrf()}{self._cookie_attrs}".encode(),
            )
        )
        await response(scope, receive, send)

    def _set_login_cookie(self, response: Response, value: str) -> None:
        cookie = (
            f"{self.auth.cookie_name}={value}{self._cookie_attrs}; HttpOnly; "
            f"Max-Age={self.auth.cookie_max_age}"
        )
        response.raw_headers.append((b"set-cookie", cookie.encode()))

    def _with_xsrf_cookie(self, send: Send) -> Send:
        """Give browsers an ``_xsrf`` cookie on their first successful HTML page."""

        async def sender(message: Message) -> None:
            if message["type"] == "http.response.start" and message["status"] < 400:
                # Raw scan: building a Headers per response costs more than the check.
                content_type = next((v for k, v in message["headers"] if k == b"content-type"), b"")
                if content_type.startswith(b"text/html"):
                    cookie = f"{XSRF_COOKIE}={self.auth.new_xsrf()}{self._cookie_attrs}"
                    message["headers"] = [*message["headers"], (b"set-cookie", cookie.encode())]
            await send(message)

        return sender


def _cookies(header: str | None) -> dict[str, str]:
    # Lenient, as browsers are: one malformed cookie from another app on this host must not
    # hide ours (the standard library's parser drops every cookie when it meets one).
    return cookie_parser(header) if header else {}


def _without_token(scope: Scope) -> str:
    pairs = parse_qsl(scope.get("query_string", b"").decode("latin-1"), keep_blank_values=True)
    return urlencode([(k, v) for k, v in pairs if k != "token"])
