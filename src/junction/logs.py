"""Logging setup for the ``junction`` command, with secrets scrubbed from every line.

Tokens travel in query strings (``?token=``) that uvicorn's access log and error messages
would print; :class:`SecretScrubber` rewrites them before any handler sees the record.
"""

from __future__ import annotations

import logging
import re
import sys
from urllib.parse import unquote_plus

__all__ = ["QuietSuccesses", "SecretScrubber", "configure_logging", "scrub"]

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


def configure_logging(level: str) -> None:
    """Send junction's and uvicorn's logs to stderr, scrubbed, at ``level``."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(
        logging.Formatter("[%(levelname).1s %(asctime)s %(name)s] %(message)s", "%H:%M:%S")
    )
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
