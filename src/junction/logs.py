"""Logging setup for the ``junction`` command, with secrets scrubbed from every line.

Tokens travel in query strings (``?token=``) that uvicorn's access log and error messages
would print; :class:`SecretScrubber` rewrites them before any handler sees the record, in
both formats: text lines for people, JSON lines (``log_format = "json"``) for collectors.

Every HTTP request gets an id (:class:`RequestIdMiddleware`): the client's ``X-Request-ID``
when it is a sane token, else a new one. It is sent back in ``X-Request-ID`` and held in
:data:`REQUEST_ID` while the request runs, so every line logged on its behalf carries it.
"""

from __future__ import annotations

import itertools
import logging
import re
import secrets
import sys
import time
import traceback
from contextvars import ContextVar
from datetime import UTC, datetime
from typing import Any, Literal
from urllib.parse import unquote_plus

import orjson
from starlette.types import ASGIApp, Message, Receive, Scope, Send

__all__ = [
    "REQUEST_ID",
    "JSONFormatter",
    "QuietSuccesses",
    "RequestIdMiddleware",
    "SecretScrubber",
    "TextFormatter",
    "WarningThrottle",
    "configure_logging",
    "scrub",
]

REQUEST_ID: ContextVar[str | None] = ContextVar("junction_request_id", default=None)
"""The id of the HTTP request being served, or None outside any request."""

_SANE_REQUEST_ID = re.compile(r"[A-Za-z0-9._:@/+=-]{1,128}")

_SECRET_NAMES = frozenset({"token", "_xsrf", "password"})
_QUERY_PAIR = re.compile(r"(?P<lead>^|[?&;\s\"'])(?P<key>[^=&?;\s\"']+)=(?P<value>[^&\s]*)")
_SECRET_HEADER = re.compile(r"((?:token|bearer)\s+)[A-Za-z0-9._~+/=-]{8,}", re.IGNORECASE)


def _scrub_pair(match: re.Match[str]) -> str:
    # Keys are compared decoded: "%74oken=" is "token=" to the server, so it is a secret too.
    if unquote_plus(match["key"]).lower() in _SECRET_NAMES:
        return f"{match['lead']}{match['key']}=[secret]"
    return match[0]


def scrub(text: str) -> str:
    """Replace secret values in query strings and auth headers with ``[secret]``."""
    return _SECRET_HEADER.sub(r"\1[secret]", _QUERY_PAIR.sub(_scrub_pair, text))


class SecretScrubber(logging.Filter):
    """A filter that formats each record's message once and scrubs it."""

    def filter(self, record: logging.LogRecord) -> bool:
        """Scrub the message in place; never drops a record."""
        try:
            message = record.getMessage()
        except (TypeError, ValueError):
            return True
        cleaned = scrub(message)
        if cleaned != message or record.args:
            record.msg, record.args = cleaned, ()
        return True


class QuietSuccesses(logging.Filter):
    """Keep access lines of successful requests out of the log unless debugging.

    Like Jupyter, lines for 1xx-3xx responses are debug detail: JupyterLab polls several
    endpoints every few seconds, and writing every line costs more than serving
    ``/api/status``. Refusals and errors (4xx, 5xx) are always logged.
    """

    def __init__(self, debug: bool) -> None:
        super().__init__()
        self.debug = debug

    def filter(self, record: logging.LogRecord) -> bool:
        """False for a successful request's access line when not debugging."""
        if self.debug or record.name != "uvicorn.access":
            return True
        args = record.args
        status = args[-1] if isinstance(args, tuple) and args else None
        return not (isinstance(status, int) and status < 400)


# Attributes every LogRecord has; anything else on a record came from ``extra=``.
_STANDARD_ATTRIBUTES = frozenset(
    set(vars(logging.LogRecord("x", logging.INFO, "x", 0, "", (), None)))
    | {"message", "asctime", "color_message"}  # uvicorn's ANSI-coloured copy of the message
)


def _exception_text(record: logging.LogRecord) -> str | None:
    if record.exc_info and record.exc_info[0] is not None:
        return scrub("".join(traceback.format_exception(*record.exc_info)).rstrip())
    return scrub(record.exc_text) if record.exc_text else None


class TextFormatter(logging.Formatter):
    """``[I 12:00:00 junction.kernels 3f2a…] message``: the request id when there is one."""

    def __init__(self) -> None:
        super().__init__("[%(levelname).1s %(asctime)s %(name)s] %(message)s", "%H:%M:%S")
        self._with_id = logging.Formatter(
            "[%(levelname).1s %(asctime)s %(name)s %(request_id)s] %(message)s", "%H:%M:%S"
        )

    def format(self, record: logging.LogRecord) -> str:
        """Format ``record``; exception text is scrubbed like the message."""
        request_id = REQUEST_ID.get()
        if record.exc_info or record.exc_text:
            record.exc_text = _exception_text(record)
            record.exc_info = None
        if request_id is None:
            return super().format(record)
        record.request_id = request_id
        return self._with_id.format(record)


class JSONFormatter(logging.Formatter):
    """One JSON object per line: time, level, logger, message, request_id, extra fields.

    ``time`` is ISO 8601 in UTC; ``request_id`` is present while a request is served;
    ``exception`` holds a traceback when there is one; fields given with ``extra=`` follow
    (string values scrubbed like the message, other values as JSON or their ``repr``).
    """

    def format(self, record: logging.LogRecord) -> str:
        """Format ``record`` as one line of JSON."""
        line: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        request_id = REQUEST_ID.get()
        if request_id is not None:
            line["request_id"] = request_id
        exception = _exception_text(record)
        if exception:
            line["exception"] = exception
        for key, value in vars(record).items():
            if key in _STANDARD_ATTRIBUTES or key.startswith("_") or key in line:
                continue
            line[key] = scrub(value) if isinstance(value, str) else value
        return orjson.dumps(line, default=repr).decode()


class RequestIdMiddleware:
    """Give every HTTP request an id, send it back as ``X-Request-ID``, log with it.

    A client's (or proxy's) ``X-Request-ID`` is kept when it is 1-128 characters of
    ``[A-Za-z0-9._:@/+=-]``, so ids chain across services; anything else is replaced, since
    it would be written into every log line.
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app
        # A random prefix per app and a counter: unique ids without a system call each.
        self._prefix = secrets.token_hex(6) + "-"
        self._counter = itertools.count(1)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        request_id = None
        for name, value in scope["headers"]:
            if name == b"x-request-id":
                candidate = value.decode("latin-1")
                if _SANE_REQUEST_ID.fullmatch(candidate):
                    request_id = candidate
                break
        if request_id is None:
            request_id = f"{self._prefix}{next(self._counter):x}"
        header = (b"x-request-id", request_id.encode())

        async def sender(message: Message) -> None:
            if message["type"] == "http.response.start":
                message["headers"] = [*message.get("headers", ()), header]
            await send(message)

        reset = REQUEST_ID.set(request_id)
        try:
            await self.app(scope, receive, sender)
        finally:
            REQUEST_ID.reset(reset)


def configure_logging(level: str, log_format: Literal["text", "json"] = "text") -> None:
    """Send junction's and uvicorn's logs to stderr, scrubbed, at ``level``, as ``log_format``."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JSONFormatter() if log_format == "json" else TextFormatter())
    handler.addFilter(QuietSuccesses(debug=level == "debug"))
    handler.addFilter(SecretScrubber())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(logging.WARNING)
    for name in ("junction", "uvicorn", "uvicorn.error", "uvicorn.access"):
        logger = logging.getLogger(name)
        logger.handlers[:] = []
        logger.propagate = True
        logger.setLevel(level.upper())


class WarningThrottle:
    """Log one warning at most every ``interval`` seconds, counting the ones left out.

    During an outage (of the database, of the identity provider behind it) every request,
    poll and open socket's recheck would otherwise log the same line. :meth:`reset` when the
    outage ends, so the next one is logged at once.
    """

    def __init__(self, logger: logging.Logger, interval: float = 60.0) -> None:
        self.logger = logger
        self.interval = interval
        self._last: float | None = None
        self._left_out = 0

    def warning(self, message: str, *args: object, exc_info: bool = False) -> None:
        """Log ``message % args`` unless a warning was logged less than ``interval`` ago."""
        now = time.monotonic()
        if self._last is not None and now - self._last < self.interval:
            self._left_out += 1
            return
        if self._left_out:
            message += " (%d more like it left out since the last one)"
            args = (*args, self._left_out)
        self._last = now
        self._left_out = 0
        self.logger.warning(message, *args, exc_info=exc_info)

    def reset(self) -> None:
        """Forget the last warning: the next one is logged at once."""
        self._last = None
        self._left_out = 0
