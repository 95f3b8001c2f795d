"""The apps listener: every app on a host name of its own, behind a one-time-code login.

``{id}.apps.localhost`` (or the configured wildcard) is a different origin from Junction's,
so a page an app serves cannot read Junction's cookies (they are host-only: no ``Domain``
attribute) nor call Junction's API with the viewer's credentials. Requests:

- ``/_junction/auth?code=...&next=/path``: a code from Junction's ``/apps/{id}/`` becomes a
  random session id in an ``HttpOnly`` host-only cookie, then a redirect to ``next``;
- with a valid cookie (or on a public app): proxied to the app, started on demand;
- otherwise pages (``GET``/``HEAD``) redirect to Junction's ``/apps/{id}/...`` (which logs in
  if needed and comes back with a code), WebSockets and other requests get 403.
"""

from __future__ import annotations

import contextlib
import html
from collections.abc import Generator
from urllib.parse import parse_qsl, quote

import uvicorn
from starlette.datastructures import Headers
from starlette.requests import cookie_parser
from starlette.responses import HTMLResponse, PlainTextResponse, RedirectResponse, Response
from starlette.types import Receive, Scope, Send

from junction.plugins.apps.manager import APP_COOKIE, SupervisedApps
from junction.plugins.apps.proxy import proxy_http, proxy_websocket, upstream_headers

__all__ = ["AppHost", "AppsServer", "failure_page"]

AUTH_PATH = "/_junction/auth"


def failure_page(name: str, reason: str | None, lines: list[str], *, show_log: bool = True) -> str:
    """The page shown instead of an app that failed: the reason and, for those who may
    manage the app (``show_log``), its last output lines (which may hold secrets)."""
    page = (
        f"<!doctype html><title>{html.escape(name)} failed</title>"
        f"<h1>{html.escape(name)} failed</h1><p>{html.escape(reason or 'unknown reason')}</p>"
    )
    if not show_log:
        return page + "<p>Its owner can read its output in the apps page.</p>"
    log = html.escape("\n".join(lines)) or "(no output)"
    return page + f"<h2>Last output</h2><pre>{log}</pre>"


class AppHost:
    """The ASGI app of the apps listener (see the module docstring)."""

    def __init__(self, apps: SupervisedApps) -> None:
        self.apps = apps
        secure = (apps.settings.public_url or "").startswith("https:")
        self._cookie_attrs = "; Path=/; HttpOnly; SameSite=Lax" + ("; Secure" if secure else "")

    def _junction_cookie(self, name: str) -> bool:
        lower = name.lower()
        return (
            name in (APP_COOKIE, self.apps.auth.cookie_name, "_xsrf")
            or lower.startswith(("junction-", "__host-junction-", "__secure-junction-"))
            or lower == self.apps.auth.cookie_name.lower()
        )

    async def _junction_tokens(self, headers: Headers) -> set[str]:
        """The credentials in the request's ``Authorization`` headers that Junction would
        accept, whatever the scheme word (these never reach an app)."""
        found: set[str] = set()
        auth = self.apps.auth
        for value in headers.getlist("authorization"):
            words = value.split(None, 1)
            for candidate in {value.strip(), words[-1].strip() if words else ""} - {""}:
                accepted = auth.check_token(candidate) or candidate.startswith("jct_")
                if not accepted and auth.identity is not None:
                    accepted = await auth.identity.user_for_token(candidate) is not None
                if accepted:
                    found.add(candidate)
        return found

    def _origin_allowed(self, headers: Headers, app_id: str, host: str) -> bool:
        """Whether a WebSocket handshake comes from the app's own pages (a browser always
        sends ``Origin``; a sibling app's page must not reach this app with the viewer's
        cookie)."""
        origin = headers.get("origin")
        if origin is None:
            return True
        origin = origin.rstrip("/").lower()
        own = {self.apps.app_origin(app_id).rstrip("/").lower()}
        own |= {f"{scheme}://{host.lower()}" for scheme in ("http", "https")}
        return origin in own

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] not in ("http", "websocket"):
            return
        headers = Headers(scope=scope)
        host = headers.get("host", "")
        app_id = self.apps.app_for_host(host)
        is_ws = scope["type"] == "websocket"
        if app_id is None:
            await self._refuse(scope, receive, send, 404, "No such app")
            return
        path: str = scope["path"]
        if path == AUTH_PATH and not is_ws:
            await self._exchange(scope, receive, send, app_id)
            return
        record = self.apps.records[app_id]
        if is_ws and not self._origin_allowed(headers, app_id, host):
            await self._refuse(scope, receive, send, 403, "WebSocket origin not allowed")
            return
        session = cookie_parser(headers.get("cookie", "")).get(APP_COOKIE)
        user = await self.apps.session_user(session, app_id)
        if not self.apps.may_view(user, record):
            if user is None and not is_ws and scope["method"] in ("GET", "HEAD"):
                query = scope.get("query_string", b"").decode("latin-1")
                target = f"{self.apps.junction_url or '/'}apps/{app_id}{quote(path)}"
                await RedirectResponse(target + (f"?{query}" if query else ""), 302)(
                    scope, receive, send
                )
            else:
                await self._refuse(scope, receive, send, 403, "Log in through Junction first")
            return
        process = await self.apps.ensure_ready(app_id)
        if process.status != "ready" or process.port is None:
            manager = user is not None and self.apps.may_manage(user, record)
            lines = process.logs.tail() if manager else []
            page = failure_page(record.spec["name"], process.reason, lines, show_log=manager)
            if is_ws:
                await self._refuse(scope, receive, send, 502, process.reason or "failed")
            else:
                await HTMLResponse(page, 502)(scope, receive, send)
            return
        process.touch()
        junction_tokens = await self._junction_tokens(headers)
        forwarded = upstream_headers(
            scope["headers"],
            junction_cookie=self._junction_cookie,
            junction_token=junction_tokens.__contains__,
            client_ip=(scope.get("client") or ("", 0))[0],
            scheme="https" if scope.get("scheme") in ("https", "wss") else "http",
            prefix="/",
            user=user.username if user is not None else None,
            websocket=is_ws,
        )
        if is_ws:
            process.connections += 1
            try:
                await proxy_websocket(
                    scope,
                    receive,
                    send,
                    port=process.port,
                    path=path,
                    headers=forwarded,
                    max_size=self.apps.settings.websocket_max_message_size,
                    on_message=process.touch,
                )
            finally:
                process.connections -= 1
                process.touch()
            return
        await proxy_http(
            scope,
            receive,
            send,
            client=self.apps.client,
            port=process.port,
            path=path,
            headers=forwarded,
            junction_cookie=self._junction_cookie,
            cookie_host=host.rpartition(":")[0] if ":" in host else host,
        )

    async def _exchange(self, scope: Scope, receive: Receive, send: Send, app_id: str) -> None:
        query = dict(parse_qsl(scope.get("query_string", b"").decode("latin-1")))
        session = self.apps.redeem(query.get("code", ""), app_id)
        if session is None:
            target = f"{self.apps.junction_url or '/'}apps/{app_id}/"
            body = (
                "<!doctype html><title>Link expired</title><p>This link has expired or was "
                f'used already. <a href="{html.escape(target)}">Open the app again</a>.</p>'
            )
            await HTMLResponse(body, 403)(scope, receive, send)
            return
        next_path = query.get("next", "/")
        if not next_path.startswith("/") or next_path.startswith("//") or "\\" in next_path:
            next_path = "/"
        response = RedirectResponse(next_path, 302)
        response.headers.append("set-cookie", f"{APP_COOKIE}={session}{self._cookie_attrs}")
        response.headers["cache-control"] = "no-store"
        await response(scope, receive, send)

    async def _refuse(
        self, scope: Scope, receive: Receive, send: Send, status: int, message: str
    ) -> None:
        if scope["type"] == "websocket":
            await send(
                {
                    "type": "websocket.http.response.start",
                    "status": status,
                    "headers": [(b"content-type", b"text/plain; charset=utf-8")],
                }
            )
            await send({"type": "websocket.http.response.body", "body": message.encode()})
            return
        response: Response = PlainTextResponse(message, status)
        await response(scope, receive, send)


class AppsServer(uvicorn.Server):
    """uvicorn for the apps listener, leaving signal handling to Junction's own server."""

    @contextlib.contextmanager
    def capture_signals(self) -> Generator[None, None, None]:
        """Install nothing: Junction's server handles SIGINT/SIGTERM and stops this one."""
        yield
