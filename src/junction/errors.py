"""Every error Junction raises on purpose, in one tree.

Services raise these; one handler in :mod:`junction.app` turns them into HTTP responses with
the Jupyter error body ``{"message": ..., "reason": ...}``. Routes never build error bodies.

::

    JunctionError
    ├── ConfigError (ValueError)          bad settings, caught before anything starts
    │   └── PluginGraphError              missing service, two providers, cycle, route clash
    └── HTTPError                         anything a client can be told about
        ├── BadRequest (ValueError)       400
        ├── Unauthorized                  401
        ├── Forbidden (PermissionError)   403
        ├── NotFound (LookupError)        404
        ├── Conflict                      409
        ├── Gone                          410
        ├── PayloadTooLarge               413
        ├── InsufficientStorage (OSError) 507
        └── ServiceUnavailable            503
            └── DatabaseUnavailable       503 the database cannot be reached right now

Plugins subclass the closest one (``KernelNotFound(NotFound)``) so callers can catch either.
"""

from __future__ import annotations

from typing import Any

__all__ = [
    "BadRequest",
    "ConfigError",
    "Conflict",
    "DatabaseUnavailable",
    "Forbidden",
    "Gone",
    "HTTPError",
    "InsufficientStorage",
    "JunctionError",
    "NotFound",
    "PayloadTooLarge",
    "PluginGraphError",
    "ServiceUnavailable",
    "Unauthorized",
]


class JunctionError(Exception):
    """Root of every error Junction raises deliberately."""


class ConfigError(JunctionError, ValueError):
    """The configuration cannot work; raised before the server starts."""


class PluginGraphError(ConfigError):
    """The enabled plugins do not compose: a missing or doubled service, a cycle, a route clash."""


class HTTPError(JunctionError):
    """An error a client is told about, with an HTTP status and a short machine-readable reason.

    ``message`` is for people; ``reason`` is a stable token clients may match on.
    """

    status_code: int = 500
    default_reason: str = "Internal Server Error"

    def __init__(self, message: str, *, reason: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.reason = reason if reason is not None else self.default_reason

    def body(self) -> dict[str, Any]:
        """The JSON error body; subclasses add fields some clients expect."""
        return {"message": self.message, "reason": self.reason}


class BadRequest(HTTPError, ValueError):
    """The request is malformed or asks for something invalid (400)."""

    status_code = 400
    default_reason = "Bad Request"


class Unauthorized(HTTPError):
    """No valid credentials were presented (401)."""

    status_code = 401
    default_reason = "Unauthorized"


class Forbidden(HTTPError, PermissionError):
    """Credentials were valid but the action is not allowed (403)."""

    status_code = 403
    default_reason = "Forbidden"


class NotFound(HTTPError, LookupError):
    """The resource does not exist, or must look as if it did not (404)."""

    status_code = 404
    default_reason = "Not Found"


class Conflict(HTTPError):
    """The request conflicts with the current state, such as an existing file (409)."""

    status_code = 409
    default_reason = "Conflict"


class Gone(HTTPError):
    """The resource existed but was removed (410)."""

    status_code = 410
    default_reason = "Gone"


class PayloadTooLarge(HTTPError):
    """The request body or a frame exceeds a configured limit (413)."""

    status_code = 413
    default_reason = "Payload Too Large"


class InsufficientStorage(HTTPError, OSError):
    """The disk is full or over quota; nothing was changed (507)."""

    status_code = 507
    default_reason = "Insufficient Storage"


class ServiceUnavailable(HTTPError):
    """A backing service (a kernel, a remote gateway) cannot be reached right now (503)."""

    status_code = 503
    default_reason = "Service Unavailable"


class DatabaseUnavailable(ServiceUnavailable):
    """The database cannot be reached or is busy past its timeout (503); nothing was changed.

    Raised by :meth:`junction.database.Database.session`; the request may be retried.
    """

    default_reason = "DatabaseUnavailable"
