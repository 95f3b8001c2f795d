"""The service registry and the services the core itself provides.

The core provides :data:`SERVER` (a :class:`ServerState`), :data:`AUTH` (an
:class:`~junction.auth.identity.Authenticator`) and :data:`REAPER` (a
:class:`~junction.reaper.Reaper`, which kills child process groups a dead server left
behind) to every plugin without them being declared.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, TypeVar

from junction.errors import ConfigError
from junction.plugin import ServiceKey

if TYPE_CHECKING:
    from junction.auth.authorizer import Authorizer
    from junction.auth.identity import Authenticator, IdentityProvider
    from junction.database import Database
    from junction.reaper import Reaper
    from junction.settings import ServerSettings

__all__ = [
    "AUTH",
    "AUTHORIZER",
    "DATABASE",
    "IDENTITY",
    "REAPER",
    "SERVER",
    "ServerState",
    "ServiceRegistry",
]

T = TypeVar("T")


class ServiceRegistry:
    """Maps service keys to the objects that implement them, one implementation per key."""

    def __init__(self) -> None:
        self._services: dict[ServiceKey[Any], Any] = {}

    def provide(self, key: ServiceKey[T], service: T) -> None:
        """Register ``service`` under ``key``; raises :class:`ConfigError` if already taken."""
        if key in self._services:
            raise ConfigError(f"service {key.name} is already provided")
        self._services[key] = service

    def get(self, key: ServiceKey[T]) -> T:
        """Return the service for ``key``; raises :class:`ConfigError` when nobody provides it."""
        try:
            return self._services[key]  # type: ignore[no-any-return]  # keyed by ServiceKey[T]
        except KeyError:
            raise ConfigError(f"service {key.name} is not available") from None

    def get_optional(self, key: ServiceKey[T]) -> T | None:
        """Return the service for ``key``, or None."""
        return self._services.get(key)

    def withdraw(self, key: ServiceKey[Any]) -> None:
        """Remove a service; called when its provider stops."""
        self._services.pop(key, None)


def utcnow() -> datetime:
    """The current time, timezone-aware in UTC."""
    return datetime.now(UTC)


def isoformat(moment: datetime) -> str:
    """Format a UTC time as Jupyter does: ISO 8601 with a ``Z`` suffix."""
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


@dataclass
class ServerState:
    """Process-wide facts served by ``/api/status`` and used for culling.

    Plugins feed it: ``gauges`` maps a name (``"kernels"``, ``"connections"``) to a function
    returning the current count; ``activity_sources`` return the last time their area was
    active (kernel output, terminal input), or None.
    """

    settings: ServerSettings
    started: datetime = field(default_factory=utcnow)
    api_activity: float = field(default_factory=time.time)
    gauges: dict[str, Callable[[], int]] = field(default_factory=dict)
    activity_sources: list[Callable[[], datetime | None]] = field(default_factory=list)

    def touch(self) -> None:
        """Record API activity now."""
        self.api_activity = time.time()

    def gauge(self, name: str) -> int:
        """The current value of a gauge, 0 when no plugin reports it."""
        read = self.gauges.get(name)
        return read() if read is not None else 0

    @property
    def last_activity(self) -> datetime:
        """The latest of API activity and every plugin's own activity."""
        latest = datetime.fromtimestamp(self.api_activity, UTC)
        for source in self.activity_sources:
            moment = source()
            if moment is not None and moment > latest:
                latest = moment
        return latest


SERVER: ServiceKey[ServerState] = ServiceKey("server")
AUTH: ServiceKey[Authenticator] = ServiceKey("auth")
REAPER: ServiceKey[Reaper] = ServiceKey("reaper")
DATABASE: ServiceKey[Database] = ServiceKey("database")
"""The shared database (provided by the core; see :mod:`junction.database`)."""
IDENTITY: ServiceKey[IdentityProvider] = ServiceKey("identity")
"""Users and their credentials in multi-user mode (provided by the ``users`` plugin)."""
AUTHORIZER: ServiceKey[Authorizer] = ServiceKey("authorizer")
"""Who may do what in multi-user mode (provided by the ``users`` plugin). Plugins ask
``AUTH``'s ``authorizer``, which is this one when it runs and allows everything otherwise."""
