"""Running the app on uvicorn: binding, the startup banner, graceful shutdown.

uvicorn handles SIGINT and SIGTERM: it stops accepting connections, then runs the app's
lifespan shutdown, where every plugin gets ``shutdown_timeout`` seconds to stop. A
:class:`~junction.errors.ConfigError` a plugin raises while starting, or the
:class:`~junction.errors.DatabaseUnavailable` of a database that cannot be opened, fails the
startup without uvicorn's traceback: :func:`run` raises it, for the command to print.
"""

from __future__ import annotations

import errno
import logging
import signal
import socket
import sys
import webbrowser
from typing import Any

import uvicorn
from fastapi import FastAPI
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from junction.auth.identity import Authenticator
from junction.errors import ConfigError, DatabaseUnavailable
from junction.http_protocol import protocol_with_header_timeout
from junction.services import AUTH
from junction.settings import ServerSettings
from junction.websocket_protocol import FrameWriterProtocol

__all__ = ["TOKEN_MASK", "JunctionServer", "bind", "server_urls"]

log = logging.getLogger("junction")


def bind(settings: ServerSettings) -> socket.socket:
    """Open the listening socket: the configured port, the next free one, or any if 0."""
    host = "127.0.0.1" if settings.ip == "localhost" else settings.ip
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    ports = (
        [0]
        if settings.port == 0
        else range(settings.port, settings.port + settings.port_retries + 1)
    )
    for port in ports:
        sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        # Accepted connections inherit this on Linux; without it small kernel messages wait
        # for delayed ACKs (Nagle), which costs ~40 ms per execute round trip.
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        try:
            sock.bind((host, port))
        except OSError as exc:
            sock.close()
            if exc.errno == errno.EADDRINUSE:
                continue
            raise ConfigError(f"cannot listen on {host}:{port}: {exc.strerror}") from exc
        sock.listen(2048)
        sock.set_inheritable(True)
        return sock
    raise ConfigError(
        f"ports {settings.port}-{settings.port + settings.port_retries} are all taken; "
        "pick another with --port (0 picks a free one)"
    )


TOKEN_MASK = "..."  # noqa: S105 - a placeholder, not a secret
"""What the startup URLs show instead of a token the operator chose."""


def server_urls(
    settings: ServerSettings, port: int, path: str, token: str, *, generated: bool
) -> list[str]:
    """The URLs to print at startup.

    A token Junction generated is printed, as ``jupyter lab`` prints it: nobody else knows
    it. A token the operator gave (``--token``, ``JUNCTION_TOKEN``, the config file) is
    masked as ``?token=...``: they already know it, and banners end up in log files.
    """
    shown = token if generated else TOKEN_MASK
    query = f"?token={shown}" if token else ""
    hosts = (
        ["localhost", "127.0.0.1"] if settings.ip in ("localhost", "127.0.0.1") else [settings.ip]
    )
    if ":" in hosts[0]:
        hosts = [f"[{hosts[0]}]"]
    if settings.ip in ("0.0.0.0", "::"):  # noqa: S104 - describing, not binding
        hosts = [socket.gethostname(), "127.0.0.1"]
    return [f"{settings.scheme}://{host}:{port}{path}{query}" for host in hosts]


class JunctionServer(uvicorn.Server):
    """uvicorn's server, plus the banner and browser once every plugin has started."""

    def __init__(self, config: uvicorn.Config, app: FastAPI, port: int) -> None:
        super().__init__(config)
        self.app = app
        self.port = port
        app.state.request_shutdown = self.request_shutdown

    def request_shutdown(self) -> None:
        """Begin a graceful shutdown, as SIGTERM does."""
        self.should_exit = True

    async def shutdown(self, sockets: list[socket.socket] | None = None) -> None:
        """Stop gracefully; a signal that asked for it then counts as a clean exit (status 0)."""
        await super().shutdown(sockets=sockets)
        if self._captured_signals:
            log.info("stopped by %s", signal.Signals(self._captured_signals[-1]).name)
            self._captured_signals.clear()

    async def startup(self, sockets: list[socket.socket] | None = None) -> None:
        """Start serving, then print where to connect."""
        await super().startup(sockets=sockets)
        if self.should_exit:
            return
        settings: ServerSettings = self.app.state.settings
        auth: Authenticator = self.app.state.services.get(AUTH)
        urls = server_urls(
            settings,
            self.port,
            self.app.state.landing_page,
            auth.token,
            generated=auth.token_generated,
        )
        lines = ["", "    To access the server, open this URL in a browser:"]
        lines += [f"        {url}" for url in urls]
        print("\n".join(lines) + "\n", file=sys.stderr, flush=True)
        if settings.open_browser:
            # The browser needs the real token to log in, whoever chose it.
            real = server_urls(
                settings, self.port, self.app.state.landing_page, auth.token, generated=True
            )
            webbrowser.open(real[0], new=2)


def uvicorn_config(app: ASGIApp, settings: ServerSettings, **extra: Any) -> uvicorn.Config:
    """The uvicorn configuration for ``settings``."""
    return uvicorn.Config(
        app,
        log_config=None,
        lifespan="on",
        ws_max_size=settings.websocket_max_message_size,
        ws_per_message_deflate=False,
        timeout_keep_alive=int(settings.keep_alive_timeout),
        timeout_graceful_shutdown=int(settings.shutdown_timeout),
        ssl_certfile=str(settings.certfile) if settings.certfile else None,
        ssl_keyfile=str(settings.keyfile) if settings.keyfile else None,
        server_header=False,
        http=protocol_with_header_timeout(settings.header_timeout),
        ws=FrameWriterProtocol,
        **extra,
    )


_STARTUP_ERRORS = (ConfigError, DatabaseUnavailable)
"""What fails a startup with one line: a bad setting, a database that cannot be opened."""


def _startup_error(exc: BaseException) -> ConfigError | DatabaseUnavailable | None:
    """The startup error ``exc`` is, or the first of those it groups when it groups nothing
    else (a plugin's lifespan may raise it inside a task group)."""
    if isinstance(exc, BaseExceptionGroup):
        matched, rest = exc.split(_STARTUP_ERRORS)
        if matched is None or rest is not None:
            return None
        exc = matched
        while isinstance(exc, BaseExceptionGroup):
            exc = exc.exceptions[0]
    return exc if isinstance(exc, _STARTUP_ERRORS) else None


class _StartupErrors:
    """The app, but a ConfigError (or DatabaseUnavailable) raised while it starts fails the
    startup quietly and is kept in ``error``; any other failure reaches uvicorn as it was."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app
        self.error: ConfigError | DatabaseUnavailable | None = None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Pass every scope on; for the lifespan, hold a startup failure until its cause is
        known (Starlette sends its traceback as the message, which uvicorn logs)."""
        if scope["type"] != "lifespan":
            await self.app(scope, receive, send)
            return
        failed: list[Message] = []

        async def held(message: Message) -> None:
            if message["type"] == "lifespan.startup.failed":
                failed.append(message)
            else:
                await send(message)

        try:
            await self.app(scope, receive, held)
        except BaseException as exc:
            if not failed:
                raise
            self.error = _startup_error(exc)
            if self.error is None:
                await send(failed[0])
                raise
            await send({"type": "lifespan.startup.failed", "message": ""})


def run(app: FastAPI, settings: ServerSettings) -> None:
    """Serve ``app`` until SIGINT or SIGTERM; raises the ConfigError a plugin raised while
    starting, or the DatabaseUnavailable of a database that could not be opened."""
    sock = bind(settings)
    port = sock.getsockname()[1]
    guarded = _StartupErrors(app)
    server = JunctionServer(uvicorn_config(guarded, settings), app, port)
    try:
        server.run(sockets=[sock])
    except SystemExit:  # uvicorn exits when the startup failed
        if guarded.error is not None:
            raise guarded.error from None
        raise
