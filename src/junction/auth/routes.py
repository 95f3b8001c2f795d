"""Login, logout and ``/api/me``.

In multi-user mode (an identity provider attached) the login form also asks for a username:
with one, the provider checks the password and opens a server-side session whose random id
becomes the login cookie (a new id at every login); without one, the server's token or
password logs in as before. Logout ends the session (and may continue at the OpenID issuer).
"""

from __future__ import annotations

import html
import json
import math
import secrets
import time
from typing import Annotated, Any, Protocol, runtime_checkable
from urllib.parse import quote, urlsplit

import anyio
import anyio.to_thread
from fastapi import APIRouter, Depends, Form, Query, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from starlette.requests import HTTPConnection

from junction.auth.identity import Authenticator, User
from junction.auth.middleware import XSRF_COOKIE, current_user
from junction.errors import BadRequest
from junction.events import emit_event
from junction.eventschemas import AUTH_EVENTS
from junction.plugin import use
from junction.services import AUTH

__all__ = ["CurrentUser", "LoginForward", "router"]

router = APIRouter()


async def _user_of(connection: HTTPConnection) -> User:  # async: no worker thread per call
    return current_user(connection.scope)


CurrentUser = Annotated[User, Depends(_user_of)]
"""Route parameter type for the authenticated user (HTTP and WebSocket routes)."""

ACTIONS = ("read", "write", "execute")


@runtime_checkable
class LoginForward(Protocol):
    """An identity provider whose login happens elsewhere (JupyterHub's OAuth).

    When the attached ``IDENTITY`` provider implements it, ``GET /login`` asks it first and,
    given a path, redirects there at once (with ``next``) instead of showing the login page.
    """

    def login_forward(self) -> str | None:
        """Where the login page forwards browsers, relative to the base URL (``"login/hub"``),
        or None to show the login page. Called at every ``GET /login``."""
        ...


_PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>{title} · Junction</title>
<meta name="viewport" content="width=device-width, initial-scale=1">
<style>
body{{font-family:system-ui,sans-serif;background:#f5f5f5;display:flex;justify-content:center;
padding-top:12vh;margin:0}}
main{{background:#fff;padding:2rem 2.5rem;border-radius:8px;box-shadow:0 1px 4px #0002;
min-width:20rem}}
h1{{font-size:1.3rem;margin-top:0}} label{{display:block;margin:.8rem 0 .3rem}}
input[type=password],input[type=text]{{width:100%;padding:.5rem;box-sizing:border-box}}
button{{margin-top:1rem;padding:.5rem 1.2rem}} .error{{color:#b00020}}
</style></head><body><main>{body}</main></body></html>"""


def safe_next(next_url: str | None, base_url: str) -> str:
    """Return ``next_url`` if it stays on this server under the base URL, else the base URL.

    Refuses absolute URLs, scheme-relative ``//host`` URLs and backslash tricks that browsers
    normalise into another host.
    """
    if not next_url:
        return base_url
    candidate = next_url.replace("\\", "/")
    parts = urlsplit(candidate)
    if parts.scheme or parts.netloc or candidate.startswith("//"):
        return base_url
    if not candidate.startswith(base_url):
        return base_url
    return candidate


def _form_page(
    auth: Authenticator, title: str, body: str, *, status: int, xsrf: str, present: str
) -> Response:
    """A page holding a form with the ``_xsrf`` field ``xsrf``; sets the XSRF cookie when
    ``xsrf`` is new (the browser sent ``present``, missing or no longer valid)."""
    response = HTMLResponse(_PAGE.format(title=title, body=body), status_code=status)
    if xsrf != present:
        response.set_cookie(
            XSRF_COOKIE,
            xsrf,
            path=auth.settings.base_url,
            samesite="lax",
            secure=auth.settings.certfile is not None or auth.settings.cookie_secure,
        )
    return response


def _login_page(request: Request, *, next_url: str, error: str = "", status: int = 200) -> Response:
    auth: Authenticator = request.app.state.services.get(AUTH)
    present = request.cookies.get(XSRF_COOKIE, "")
    xsrf = present if auth.valid_xsrf(present) else auth.new_xsrf()
    what = "password or token" if auth.password_enabled else "token"
    error_html = f'<p class="error" role="alert">{html.escape(error)}</p>' if error else ""
    username_html = ""
    links_html = ""
    if auth.identity is not None:
        for label, path in auth.identity.login_links():
            href = html.escape(f"{auth.settings.base_url}{path}?next={quote(next_url, safe='')}")
            links_html += f'<p><a class="login-link" href="{href}">{html.escape(label)}</a></p>'
        if auth.identity.password_login:
            what = "password (or, without a username, the server's token)"
            username_html = (
                '<label for="username">Username</label>'
                '<input type="text" id="username" name="username" autofocus '
                'autocomplete="username">'
            )
    body = (
        f"<h1>Log in to Junction</h1>{error_html}{links_html}"
        f'<form method="post" action="{html.escape(auth.settings.base_url)}login">'
        f"{username_html}"
        f'<label for="password">Enter your {what}</label>'
        '<input type="password" id="password" name="password" '
        f'{"" if username_html else "autofocus "}autocomplete="current-password">'
        f'<input type="hidden" name="_xsrf" value="{html.escape(xsrf)}">'
        f'<input type="hidden" name="next" value="{html.escape(next_url)}">'
        '<button type="submit">Log in</button></form>'
    )
    return _form_page(auth, "Log in", body, status=status, xsrf=xsrf, present=present)


@router.get("/login", include_in_schema=False)
async def login_form(request: Request, next: str | None = None) -> Response:
    """The login page; its form posts the token or password back here."""
    auth: Authenticator = request.app.state.services.get(AUTH)
    target = safe_next(next, auth.settings.base_url)
    # A provider whose only login is elsewhere (JupyterHub) names its route: no page between.
    forward = auth.identity.login_forward() if isinstance(auth.identity, LoginForward) else None
    if forward is not None:
        location = f"{auth.settings.base_url}{forward}?next={quote(target, safe='')}"
        return RedirectResponse(location, status_code=302)
    return _login_page(request, next_url=target)


class LoginThrottle:
    """Slows down guessing per account and per client address, not for everyone.

    Each failed login counts against the account named and the address it came from. Past
    a few failures, that account (or address) must wait before its next attempt, twice as
    long after each further failure (up to :attr:`MAX_WAIT`); meanwhile its attempts get
    429 at once, before any password hash is computed, and one attempt per account is
    checked at a time. A flood of guesses for one name therefore neither queues other
    users' logins behind the hashing nor slows them down. A success forgets the account's
    failures. Counts are in memory, per server process, and forgotten after
    :attr:`WINDOW` seconds without a failure.
    """

    ACCOUNT_FREE = 5
    """Failures an account may have before it must wait."""
    ADDRESS_FREE = 20
    """Failures an address may have (across accounts) before it must wait."""
    FIRST_WAIT = 5.0
    """Seconds to wait after the first failure past the free ones; doubled after each."""
    MAX_WAIT = 300.0
    WINDOW = 900.0

    def __init__(self) -> None:
        self._failures: dict[tuple[str, str], tuple[int, float]] = {}
        self._checking: set[str] = set()

    def wait(self, account: str, address: str) -> float:
        """Seconds before this account may try again from this address (0: now)."""
        now = time.monotonic()
        if account and account in self._checking:
            return 1.0
        waits = [
            self._wait(("account", account), self.ACCOUNT_FREE, now) if account else 0.0,
            self._wait(("address", address), self.ADDRESS_FREE, now),
        ]
        return max(waits)

    def _wait(self, key: tuple[str, str], free: int, now: float) -> float:
        count, last = self._failures.get(key, (0, 0.0))
        if now - last > self.WINDOW:
            self._failures.pop(key, None)
            return 0.0
        if count < free:
            return 0.0
        wait = min(self.FIRST_WAIT * 2.0 ** (count - free), self.MAX_WAIT)
        return max(0.0, last + wait - now)

    def checking(self, account: str) -> _Checking:
        """A context in which ``account``'s password is being checked."""
        return _Checking(self._checking, account)

    def failed(self, account: str, address: str) -> None:
        """Count a failed attempt."""
        now = time.monotonic()
        keys = [("address", address)] + ([("account", account)] if account else [])
        for key in keys:
            count, last = self._failures.get(key, (0, 0.0))
            self._failures[key] = (1 if now - last > self.WINDOW else count + 1, now)
        if len(self._failures) > 100_000:  # a spray of names: keep memory bounded
            self._failures.clear()

    def succeeded(self, account: str) -> None:
        """Forget the account's failures."""
        self._failures.pop(("account", account), None)


class _Checking:
    def __init__(self, checking: set[str], account: str) -> None:
        self._checking = checking
        self._account = account

    def __enter__(self) -> None:
        if self._account:
            self._checking.add(self._account)

    def __exit__(self, *exc: object) -> None:
        self._checking.discard(self._account)


def _throttle(request: Request) -> LoginThrottle:
    throttle: LoginThrottle | None = getattr(request.app.state, "login_throttle", None)
    if throttle is None:
        throttle = request.app.state.login_throttle = LoginThrottle()
    return throttle


@router.post("/login", include_in_schema=False)
async def login(
    request: Request,
    password: Annotated[str, Form()] = "",
    username: Annotated[str, Form()] = "",
    xsrf: Annotated[str, Form(alias="_xsrf")] = "",
    next_url: Annotated[str, Form(alias="next")] = "",
) -> Response:
    """Check the secret; on success set the login cookie and go to ``next``."""
    auth: Authenticator = request.app.state.services.get(AUTH)
    target = safe_next(next_url, auth.settings.base_url)
    cookie_xsrf = request.cookies.get(XSRF_COOKIE, "")
    if (
        not xsrf
        or not secrets.compare_digest(xsrf.encode(), cookie_xsrf.encode())
        or not auth.valid_xsrf(xsrf)
    ):
        return _login_page(
            request, next_url=target, error="Your form expired; try again.", status=403
        )
    identity = auth.identity
    throttle = _throttle(request)
    address = request.client.host if request.client is not None else ""
    account = username.strip().lower() if identity is not None and username else ""
    wait = throttle.wait(account, address)
    if wait > 0:
        response = _login_page(
            request,
            next_url=target,
            error=f"Too many failed logins; try again in {math.ceil(wait)} seconds.",
            status=429,
        )
        response.headers["Retry-After"] = str(math.ceil(wait))
        return response
    if identity is not None and username and identity.password_login:
        with throttle.checking(account):
            user = await identity.check_password(username, password)
            if user is None:
                throttle.failed(account, address)
                await anyio.sleep(0.5)
        if user is None:
            emit_event(request, AUTH_EVENTS, {"action": "login_failed"}, username=account)
            return _login_page(request, next_url=target, error="Invalid credentials.", status=401)
        throttle.succeeded(account)
        return await start_session(request, user, target)
    if not await _check_login_off_loop(request, auth, password):
        throttle.failed("", address)
        emit_event(request, AUTH_EVENTS, {"action": "login_failed"})
        return _login_page(request, next_url=target, error="Invalid credentials.", status=401)
    emit_event(request, AUTH_EVENTS, {"action": "login"}, username=auth.user.username)
    response = RedirectResponse(target, status_code=302)
    set_login_cookie(response, auth, auth.make_cookie(auth.user))
    return response


def set_login_cookie(response: Response, auth: Authenticator, value: str) -> None:
    """Set the login cookie (``HttpOnly``, ``SameSite=Lax``, ``Secure`` under TLS)."""
    response.set_cookie(
        auth.cookie_name,
        value,
        max_age=auth.cookie_max_age,
        path=auth.settings.base_url,
        httponly=True,
        samesite="lax",
        secure=auth.settings.certfile is not None or auth.settings.cookie_secure,
    )


async def start_session(request: Request, user: User, target: str, **extra: Any) -> Response:
    """Log ``user`` in (multi-user mode): end the browser's previous session, open a new one
    with a new random id, and redirect to ``target``. ``extra`` goes to the provider."""
    auth: Authenticator = request.app.state.services.get(AUTH)
    assert auth.identity is not None
    previous = request.cookies.get(auth.cookie_name)
    if previous:
        await auth.identity.close_session(previous)
    agent = request.headers.get("user-agent", "")
    address = request.client.host if request.client is not None else ""
    session = await auth.identity.open_session(user, agent=agent, address=address, **extra)
    emit_event(request, AUTH_EVENTS, {"action": "login"}, username=user.username)
    response = RedirectResponse(target, status_code=302)
    set_login_cookie(response, auth, session)
    return response


async def _check_login_off_loop(request: Request, auth: Authenticator, secret: str) -> bool:
    """Check a login secret in a worker thread, a few at a time, slowing down failures.

    argon2 takes tens of milliseconds of CPU by design; on the event loop a burst of login
    attempts would stall every other client.
    """
    limiter: anyio.CapacityLimiter | None = getattr(request.app.state, "login_limiter", None)
    if limiter is None:
        limiter = request.app.state.login_limiter = anyio.CapacityLimiter(2)
    ok = await anyio.to_thread.run_sync(auth.check_login, secret, limiter=limiter)
    if not ok:
        await anyio.sleep(0.5)
    return ok


@router.get("/logout", include_in_schema=False)
async def logout(request: Request) -> Response:
    """Log out, unless the browser says another site sent it here: then ask first.

    JupyterLab's and Notebook's logout commands navigate here from our own pages
    (``Sec-Fetch-Site: same-origin``); a link or an image on another site must not end the
    session, so it gets a page whose button posts a form back here (``POST /logout``).
    """
    if request.headers.get("sec-fetch-site") in ("cross-site", "same-site"):
        return _logout_page(request)
    return await _log_out(request)


@router.post("/logout", include_in_schema=False)
async def logout_confirmed(
    request: Request, xsrf: Annotated[str, Form(alias="_xsrf")] = ""
) -> Response:
    """Log out from the confirmation form (its ``_xsrf`` must match the cookie)."""
    auth: Authenticator = request.app.state.services.get(AUTH)
    cookie_xsrf = request.cookies.get(XSRF_COOKIE, "")
    if (
        not xsrf
        or not secrets.compare_digest(xsrf.encode(), cookie_xsrf.encode())
        or not auth.valid_xsrf(xsrf)
    ):
        return _logout_page(request, status=403)
    return await _log_out(request)


def _logout_page(request: Request, status: int = 200) -> Response:
    auth: Authenticator = request.app.state.services.get(AUTH)
    present = request.cookies.get(XSRF_COOKIE, "")
    xsrf = present if auth.valid_xsrf(present) else auth.new_xsrf()
    base = html.escape(auth.settings.base_url)
    expired = ""
    if status != 200:
        expired = '<p class="error" role="alert">Your form expired; try again.</p>'
    body = (
        f"<h1>Log out?</h1>{expired}"
        f'<form method="post" action="{base}logout">'
        f'<input type="hidden" name="_xsrf" value="{html.escape(xsrf)}">'
        '<button type="submit">Log out</button></form>'
        f'<p><a href="{base}">Stay logged in</a></p>'
    )
    return _form_page(auth, "Log out", body, status=status, xsrf=xsrf, present=present)


async def _log_out(request: Request) -> Response:
    """Forget the login cookie; in multi-user mode end the session on the server too, and
    continue at the OpenID issuer's logout page when the session came from there."""
    auth: Authenticator = request.app.state.services.get(AUTH)
    base = html.escape(auth.settings.base_url)
    body = f'<h1>Logged out</h1><p><a href="{base}login">Log in again</a></p>'
    response: Response = HTMLResponse(_PAGE.format(title="Logged out", body=body))
    cookie = request.cookies.get(auth.cookie_name)
    if cookie:
        user, _ = await auth.identify(query_token=None, header=None, cookie=cookie)
        if user is not None:
            emit_event(request, AUTH_EVENTS, {"action": "logout"}, username=user.username)
    if auth.identity is not None and cookie:
        elsewhere = await auth.identity.close_session(cookie)
        if elsewhere:
            response = RedirectResponse(elsewhere, status_code=302)
    response.delete_cookie(auth.cookie_name, path=auth.settings.base_url)
    return response


def _parse_permissions(raw: str | None) -> dict[str, list[str]]:
    if not raw:
        return {}
    try:
        requested = json.loads(raw)
    except ValueError:
        raise BadRequest("permissions should be a JSON dict of {resource: [actions]}") from None
    valid = isinstance(requested, dict) and all(
        isinstance(actions, list) and all(isinstance(a, str) for a in actions)
        for actions in requested.values()
    )
    if not valid:
        raise BadRequest("permissions should be a JSON dict of {resource: [actions]}")
    return dict(requested)


@router.get("/api/me", tags=["auth"])
async def me(
    user: CurrentUser,
    auth: Annotated[Authenticator, use(AUTH)],
    permissions: Annotated[str | None, Query()] = None,
) -> dict[str, Any]:
    """The current identity and, for each requested resource, the actions it may take."""
    requested = _parse_permissions(permissions)
    allowed = auth.authorizer.is_authorized
    granted = {
        resource: [a for a in actions if a in ACTIONS and allowed(user, a, resource)]
        for resource, actions in requested.items()
    }
    return {"identity": user.identity(), "permissions": granted}
