"""Junction: a Jupyter server on ASGI where everything is a plugin.

Map of the package:

- :mod:`junction.plugin`: the plugin contract (``Plugin``, ``PluginContext``, ``ServiceKey``,
  ``use``): all a plugin author needs.
- :mod:`junction.app`: ``create_app``, which composes plugins into one FastAPI app.
- :mod:`junction.registry`: discovery, profiles and the composition checks.
- :mod:`junction.settings` and :mod:`junction.config`: settings and their layering.
- :mod:`junction.auth`: tokens, passwords, cookies, XSRF, login pages.
- :mod:`junction.errors`: the error tree.
- :mod:`junction.cli` and :mod:`junction.server`: the ``junction`` command and uvicorn.
- :mod:`junction.plugins`: the first-party plugins, one package per API area.
"""

from junction import _lean_imports  # noqa: F401  (first: it must run before jsonschema loads)
from junction._version import __version__
from junction.app import create_app
from junction.auth.identity import User
from junction.errors import (
    BadRequest,
    ConfigError,
    Conflict,
    Forbidden,
    Gone,
    HTTPError,
    InsufficientStorage,
    JunctionError,
    NotFound,
    PayloadTooLarge,
    PluginGraphError,
    ServiceUnavailable,
    Unauthorized,
)
from junction.plugin import NoSettings, Plugin, PluginContext, PluginSettings, ServiceKey, use
from junction.services import AUTH, SERVER, ServerState
from junction.settings import ServerSettings

__all__ = [
    "AUTH",
    "SERVER",
    "BadRequest",
    "ConfigError",
    "Conflict",
    "Forbidden",
    "Gone",
    "HTTPError",
    "InsufficientStorage",
    "JunctionError",
    "NoSettings",
    "NotFound",
    "PayloadTooLarge",
    "Plugin",
    "PluginContext",
    "PluginGraphError",
    "PluginSettings",
    "ServerSettings",
    "ServerState",
    "ServiceKey",
    "ServiceUnavailable",
    "Unauthorized",
    "User",
    "__version__",
    "create_app",
    "use",
]
