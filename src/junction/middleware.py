"""Request guards that are not about identity: Host checking, security headers, and the
JSON labelling of Jupyter API request bodies."""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Iterable

from starlette.datastructures import Headers
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from junction.auth.middleware import deny
from junction.settings import LOOPBACK_NAMES

__all__ = [
    "HostGuardMiddleware",
    "PlainTextJSONMiddleware",
    "SecurityHeadersMiddleware",
    "host_is_local",
]


_VERDICTS_KEPT = 256
_HOST = re.compile(r"^(?:\[(?P<v6>[0-9a-f:.]+)\]|(?P<name>[a-z0-9.-]+))(?::\d{1,5})?$")


def host_is_local(host_header: str, extra: Iterable[str]) -> bool:
    """Whether a ``Host`` header names this machine (loopback or a configured local name)."""
    match = _HOST.match(host_header.strip().lower())
    if match is None:
        return False
    host = match["v6"] or match["name"]
    if host in LOOPBACK_NAMES or host in {name.lower() for name in extra}:
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


class HostGuardMiddleware:
    """Refuse requests whose ``Host`` is not local while the server listens on loopback.

    A web page on another origin can resolve its own name to 127.0.0.1 (DNS rebinding) and so
    reach a local server with its own ``Host``; refusing unknown hosts closes that door.
    """

    def __init__(self, app: ASGIApp, *, local_hostnames: Iterable[str]) -> None:
        self.app = app
        self.local_hostnames = tuple(local_hostnames)
        self._verdicts: dict[str, bool] = {}
        """``Host`` values already judged: clients send the same few on every request."""

    def _is_local(self, host: str) -> bool:
        verdict = self._verdicts.get(host)
        if verdict is None:
            verdict = host_is_local(host, self.local_hostnames)
            if len(self._verdicts) >= _VERDICTS_KEPT:
                self._verdicts.clear()  # hostile clients may send endless distinct values
            self._verdicts[host] = verdict
        return verdict

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] in ("http", "websocket"):
            host = Headers(scope=scope).get("host", "")
            if not self._is_local(host):
                await deny(
                    scope,
                    receive,
                    send,
                    403,
                    "Host header is not allowed; set "
                    "allow_remote_access or local_hostnames to accept it",
                )
                return
        await self.app(scope, receive, send)


class SecurityHeadersMiddleware:
    """Add the headers every response should carry.

    ``frame-ancestors 'self'`` stops other sites framing the UI; API responses also get
    ``default-src 'none'`` since they are never documents. Routes that set their own
    Content-Security-Policy (raw files are sandboxed) keep theirs.
    """

    def __init__(self, app: ASGIApp, *, base_url: str) -> None:
        self.app = app
        self.api_prefix = base_url + "api"

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        is_api = scope["path"].startswith(self.api_prefix)
        policy = (
            b"frame-ancestors 'self'; default-src 'none'" if is_api else b"frame-ancestors 'self'"
        )

        async def sender(message: Message) -> None:
            if message["type"] == "http.response.start":
                present = {name.lower() for name, _ in message["headers"]}
                extra = [
                    (b"x-content-type-options", b"nosniff"),
                    (b"referrer-policy", b"same-origin"),
                ]
                if b"content-security-policy" not in present:
                    extra.append((b"content-security-policy", policy))
                message["headers"] = [*message["headers"], *extra]
            await send(message)

        await self.app(scope, receive, sender)


class PlainTextJSONMiddleware:
    """Treat ``text/plain`` and unlabelled request bodies as JSON, as Jupyter clients expect.

    ``fetch(url, {body: JSON.stringify(model)})`` in browsers and Node labels the body
    ``text/plain;charset=UTF-8``, and JupyterLab and ``@jupyterlab/services`` send every
    model that way; jupyter_server decodes bodies as JSON whatever their type. Relabelling
    them here lets every route declare ordinary JSON bodies. This adds no cross-site risk:
    a cookie-authenticated unsafe request still needs the ``X-XSRFToken`` header, which a
    cross-site ``text/plain`` request cannot carry.

    Only the Jupyter APIs that take JSON bodies are relabelled: paths under ``api/``,
    ``lab/api/`` and ``nbconvert/`` of the base URL. Everything else keeps the type the client
    sent, above all the routes that pass requests on unchanged (``/proxy/{port}/``).
    """

    def __init__(self, app: ASGIApp, *, base_url: str = "/") -> None:
        self.app = app
        self.prefixes = tuple(base_url + part for part in ("api/", "lab/api/", "nbconvert/"))

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if (
            scope["type"] == "http"
            and scope["method"] in ("POST", "PUT", "PATCH", "DELETE")
            and scope["path"].startswith(self.prefixes)
        ):
            headers = scope["headers"]
            for index, (name, value) in enumerate(headers):
                if name == b"content-type":
                    if value.lower().startswith(b"text/plain"):
                        headers = list(headers)
                        headers[index] = (b"content-type", b"application/json")
                        scope = {**scope, "headers": headers}
                    break
            else:
                scope = {**scope, "headers": [*headers, (b"content-type", b"application/json")]}
        await self.app(scope, receive, send)
