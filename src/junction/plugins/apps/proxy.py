"""The reverse proxy: HTTP through :mod:`~junction.plugins.apps.forwarder`, streamed both
ways; WebSockets through ``websockets``.

What reaches the app (see :func:`upstream_headers`): the browser's headers without
hop-by-hop headers, without Junction's cookies (dropped by name: the app's own cookies pass
byte for byte), without an ``Authorization`` header that carries a Junction token, without
the ``token`` query parameter (its name compared decoded), without any header whose name
has an underscore and without any identity header the client sent; with the
browser's ``Host`` (frameworks compare it with ``Origin``) and ``X-Forwarded-For``,
``-Proto``, ``-Host``, ``-Prefix`` and ``X-Forwarded-User`` (the viewer, set by Junction
alone). What reaches the browser: the app's response without hop-by-hop headers and without
a ``Set-Cookie`` for one of Junction's cookie names.

WebSockets: every subprotocol the browser offers is offered upstream and the browser is
answered with the app's choice; messages pass in both directions, text as text and binary as
binary, up to ``max_size`` bytes; each direction awaits the other side's send, so a slow
reader slows the writer instead of filling memory.
"""

from __future__ import annotations

import asyncio
import contextlib
import re
from collections.abc import AsyncIterator, Callable, Iterable
from typing import TYPE_CHECKING
from urllib.parse import quote, unquote_plus

import anyio
import websockets
from starlette.responses import JSONResponse
from starlette.types import Message, Receive, Scope, Send
from websockets.typing import Origin, Subprotocol

if TYPE_CHECKING:
    from websockets.asyncio.client import ClientConnection

    from junction.plugins.apps.forwarder import Forwarder, Response

__all__ = ["filter_query", "proxy_http", "proxy_websocket", "response_headers", "upstream_headers"]

_HOP_BY_HOP = frozenset(
    {
        "connection",
        "keep-alive",
        "proxy-authenticate",
        "proxy-authorization",
        "proxy-connection",
        "te",
        "trailer",
        "trailers",
        "transfer-encoding",
        "upgrade",
    }
)
_IDENTITY = frozenset(
    {
        "forwarded",
        "x-forwarded-for",
        "x-forwarded-proto",
        "x-forwarded-host",
        "x-forwarded-port",
        "x-forwarded-prefix",
        "x-forwarded-user",
        "x-forwarded-user-data",
        "x-forwarded-email",
        "x-forwarded-groups",
        "x-real-ip",
        "x-remote-user",
        "remote-user",
        "x-auth-request-user",
        "x-auth-request-email",
    }
)
_WEBSOCKET_OWN = frozenset(
    {
        "host",
        "origin",
        "sec-websocket-key",
        "sec-websocket-version",
        "sec-websocket-extensions",
        "sec-websocket-protocol",
        "sec-websocket-accept",
    }
)


_PATH_SAFE = "/%:@!$&()*+,;=~"
_QUERY_SAFE = "".join(chr(c) for c in range(0x21, 0x7F))
_PLAIN_QUERY = re.compile(r"[\x21-\x7e]*")
# What quote(path, safe=_PATH_SAFE) leaves as it is: most paths skip the call.
_PLAIN_PATH = re.compile(r"[A-Za-z0-9_.\-/%:@!$&()*+,;=~]*")


def _cookie_name(pair: str) -> str:
    return pair.partition("=")[0].strip()


def upstream_headers(
    raw: Iterable[tuple[bytes, bytes]],
    *,
    junction_cookie: Callable[[str], bool],
    junction_token: Callable[[str], bool],
    client_ip: str,
    scheme: str,
    prefix: str,
    user: str | None,
    websocket: bool = False,
) -> list[tuple[str, str]]:
    """The headers to send upstream for a browser request (see the module docstring)."""
    headers: list[tuple[str, str]] = []
    host = ""
    for key_bytes, value_bytes in raw:
        key = key_bytes.decode("latin-1").lower()
        value = value_bytes.decode("latin-1")
        # CGI-style servers read "_" and "-" alike, so "X-Forwarded_User" would pass for
        # the identity header: names with "_" are dropped, as nginx does by default.
        if "_" in key or key in _HOP_BY_HOP or key in _IDENTITY or key.startswith("x-junction-"):
            continue
        if key == "host":
            host = value
        if websocket and key in _WEBSOCKET_OWN:
            continue
        if key == "cookie":
            pairs = value.split(";")
            kept = [p for p in pairs if not junction_cookie(_cookie_name(p))]
            if len(kept) != len(pairs):
                value = ";".join(kept).strip()
            if not value:
                continue
        elif key == "authorization":
            words = value.split(None, 1)
            credential = words[-1].strip() if words else ""
            if junction_token(credential) or junction_token(value.strip()):
                continue
        headers.append((key, value))
    headers += [
        ("x-forwarded-for", client_ip),
        ("x-forwarded-proto", scheme),
        ("x-forwarded-host", host),
        ("x-forwarded-prefix", prefix.rstrip("/") or "/"),
    ]
    if user is not None:
        headers.append(("x-forwarded-user", quote(user, safe="")))
    return headers


def filter_query(query: bytes) -> str:
    """The query string without ``token`` parameters (the name compared once decoded, in any
    case, as Junction reads it: ``%74oken`` too); everything else kept as sent."""
    text = query.decode("latin-1")

    def is_token(pair: str) -> bool:
        name = unquote_plus(pair.partition("=")[0], encoding="latin-1")
        return name.strip().lower() == "token"

    return "&".join(p for p in text.split("&") if not is_token(p))


def _cookie_domain(set_cookie: str) -> str | None:
    for attribute in set_cookie.split(";")[1:]:
        name, _, value = attribute.partition("=")
        if name.strip().lower() == "domain":
            return value.strip().lstrip(".").lower()
    return None


def response_headers(
    raw: Iterable[tuple[bytes, bytes]],
    *,
    junction_cookie: Callable[[str], bool],
    cookie_host: str | None = None,
) -> list[tuple[bytes, bytes]]:
    """The app's response headers without hop-by-hop ones and Junction-named cookies; with
    ``cookie_host`` (an app host's name), also without a cookie whose ``Domain`` is not that
    host exactly: a parent domain would reach Junction and the other apps."""
    raw = list(raw)
    # With Transfer-Encoding the body's framing is the chunks (RFC 9112, 6.3), which the
    # proxy re-frames: a Content-Length beside it would be wrong.
    chunked = any(key.lower() == b"transfer-encoding" for key, _ in raw)
    kept: list[tuple[bytes, bytes]] = []
    for key, value in raw:
        lower = key.lower()
        if lower.decode("latin-1") in _HOP_BY_HOP or (chunked and lower == b"content-length"):
            continue
        if lower == b"set-cookie":
            text = value.decode("latin-1")
            if junction_cookie(_cookie_name(text)):
                continue
            domain = _cookie_domain(text)
            if cookie_host is not None and domain is not None and domain != cookie_host.lower():
                continue
        kept.append((lower, value))
    return kept


class _ClientGone(Exception):
    """The browser went away while its request body was being forwarded."""


async def _request_body(receive: Receive) -> AsyncIterator[bytes]:
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            # Raised, not returned: an upload cut short must not reach the app as complete.
            raise _ClientGone
        body: bytes = message.get("body", b"")
        if body:
            yield body
        if not message.get("more_body", False):
            return


def _error(status: int, message: str) -> JSONResponse:
    reasons = {400: "Bad Request", 404: "Not Found", 502: "Bad Gateway", 504: "Gateway Timeout"}
    return JSONResponse({"message": message, "reason": reasons[status]}, status)


async def proxy_http(
    scope: Scope,
    receive: Receive,
    send: Send,
    *,
    client: Forwarder,
    port: int,
    path: str,
    headers: list[tuple[str, str]],
    junction_cookie: Callable[[str], bool],
    unreachable_status: int = 502,
    cookie_host: str | None = None,
) -> None:
    """Forward one HTTP request to ``127.0.0.1:port`` and stream the answer back; when
    nothing answers there, a JSON error with ``unreachable_status`` (504 when the app
    accepts no connection or begins no response in time, 502 when it breaks off)."""
    # loaded with the forwarder (h11): startup time only a server running apps needs
    from junction.plugins.apps.forwarder import (
        InvalidRequest,
        Upstream,
        UpstreamClosed,
        UpstreamError,
        UpstreamTimeout,
        UpstreamUnreachable,
    )

    query = filter_query(scope.get("query_string", b""))
    if not _PLAIN_PATH.fullmatch(path):
        path = quote(path, safe=_PATH_SAFE)
    if query and not _PLAIN_QUERY.fullmatch(query):
        # a space or a byte past ASCII sent raw: percent-encoded, as browsers send them
        query = quote(query, safe=_QUERY_SAFE, encoding="latin-1")
    target = path + (f"?{query}" if query else "")
    method: str = scope["method"]
    sent = [(k.encode("latin-1"), v.encode("latin-1")) for k, v in headers]
    framed = any(k in (b"content-length", b"transfer-encoding") for k, _ in scope["headers"])
    if not framed and method in ("POST", "PUT", "PATCH"):
        sent.append((b"content-length", b"0"))  # some servers want a length on these
    try:
        response = await client.request(
            Upstream("127.0.0.1", port),
            method.encode("ascii"),
            target.encode("latin-1"),
            sent,
            _request_body(receive) if framed else None,
        )
    except _ClientGone:
        return
    except InvalidRequest as exc:
        await _error(400, f"the request can't be forwarded: {exc}")(scope, receive, send)
        return
    except UpstreamTimeout as exc:
        await _error(504, f"the app on port {port} did not answer: {exc}")(scope, receive, send)
        return
    except UpstreamError as exc:
        status = unreachable_status if isinstance(exc, UpstreamUnreachable) else 502
        message = f"nothing answered on port {port}: {exc}"
        await _error(status, message)(scope, receive, send)
        return
    async with response:
        await send(
            {
                "type": "http.response.start",
                "status": response.status,
                "headers": response_headers(
                    response.headers, junction_cookie=junction_cookie, cookie_host=cookie_host
                ),
            }
        )
        watcher: list[asyncio.Task[None]] = []

        def watch() -> None:
            # A body in several reads may be long: stop reading the app once the browser has
            # gone (uvicorn's send drops data silently then).
            watcher.append(asyncio.create_task(_wait_disconnect(receive, response)))

        try:
            async for chunk in response.stream(before_wait=watch):
                await send({"type": "http.response.body", "body": chunk, "more_body": True})
        except UpstreamClosed:
            return  # the browser's response ends cut short too (uvicorn closes it)
        finally:
            for task in watcher:
                task.cancel()
        await send({"type": "http.response.body", "body": b""})


async def _wait_disconnect(receive: Receive, response: Response) -> None:
    while (await receive())["type"] != "http.disconnect":
        pass
    response.abort()


async def proxy_websocket(
    scope: Scope,
    receive: Receive,
    send: Send,
    *,
    port: int,
    path: str,
    headers: list[tuple[str, str]],
    max_size: int,
    on_message: Callable[[], None],
) -> None:
    """Relay one WebSocket between the browser and ``127.0.0.1:port`` (module docstring)."""
    connect_message = await receive()
    if connect_message["type"] != "websocket.connect":
        return
    query = filter_query(scope.get("query_string", b""))
    host = next((v for k, v in scope["headers"] if k == b"host"), b"localhost").decode("latin-1")
    target = f"ws://{host}{quote(path, safe='/%:@!$&()*+,;=~')}" + (f"?{query}" if query else "")
    offered = [Subprotocol(p) for p in scope.get("subprotocols", [])]
    origin = next((v for k, v in scope["headers"] if k == b"origin"), None)
    from websockets.asyncio.client import connect  # only proxied WebSockets need it

    try:
        upstream = await connect(
            target,
            host="127.0.0.1",
            port=port,
            proxy=None,
            subprotocols=offered or None,
            origin=Origin(origin.decode("latin-1")) if origin else None,
            additional_headers=headers,
            max_size=max_size,
            compression=None,
            open_timeout=30,
            user_agent_header=None,
        )
    except websockets.InvalidStatus as refused:
        await _refuse(send, refused.response.status_code, bytes(refused.response.body or b""))
        return
    except (OSError, websockets.WebSocketException, TimeoutError):
        await _refuse(send, 502, b"The app did not accept the WebSocket")
        return
    async with upstream:
        await send({"type": "websocket.accept", "subprotocol": upstream.subprotocol})
        async with anyio.create_task_group() as group:
            group.start_soon(_browser_to_app, receive, upstream, on_message, group.cancel_scope)
            await _app_to_browser(upstream, send, on_message)
            group.cancel_scope.cancel()


async def _refuse(send: Send, status: int, body: bytes) -> None:
    await send(
        {
            "type": "websocket.http.response.start",
            "status": status,
            "headers": [(b"content-type", b"text/plain; charset=utf-8")],
        }
    )
    await send({"type": "websocket.http.response.body", "body": body})


async def _browser_to_app(
    receive: Receive,
    upstream: ClientConnection,
    on_message: Callable[[], None],
    scope: anyio.CancelScope,
) -> None:
    while True:
        message: Message = await receive()
        if message["type"] == "websocket.disconnect":
            await upstream.close(message.get("code", 1000) or 1000)
            scope.cancel()
            return
        on_message()
        data = message.get("bytes")
        try:
            await upstream.send(data if data is not None else message.get("text") or "")
        except websockets.ConnectionClosed:
            return


async def _app_to_browser(
    upstream: ClientConnection, send: Send, on_message: Callable[[], None]
) -> None:
    code, reason = 1000, ""
    try:
        async for data in upstream:
            on_message()
            if isinstance(data, bytes):
                await send({"type": "websocket.send", "bytes": data})
            else:
                await send({"type": "websocket.send", "text": data})
    except websockets.ConnectionClosed:
        pass
    if upstream.close_code is not None:
        code, reason = upstream.close_code, upstream.close_reason or ""
    # 1005 (no code) and 1006 (no close frame) are never sent on the wire
    code = {1005: 1000, 1006: 1011}.get(code, code)
    with contextlib.suppress(Exception):  # the browser may be gone already
        await send({"type": "websocket.close", "code": code, "reason": reason})
