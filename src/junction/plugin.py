"""The plugin contract: what a plugin declares and what it gets when it starts.

A plugin is a frozen :class:`Plugin` value exported as ``plugin`` from its package and listed
under the ``junction.plugins`` entry-point group. It *declares* everything the core needs to
check the composition before anything runs (services provided, required and optionally used,
its settings model, its routers); the core then starts the plugins in dependency order, each
inside its own :data:`Lifespan`, handing it a :class:`PluginContext`.

Services are looked up by typed :class:`ServiceKey` values, never by class::

    KERNELS: ServiceKey[KernelService] = ServiceKey("kernels")

    @asynccontextmanager
    async def lifespan(ctx: PluginContext[KernelsSettings]) -> AsyncIterator[None]:
        async with JupyterClientKernels(ctx.settings) as kernels:
            ctx.provide(KERNELS, kernels)
            yield

Routes reach services with :func:`use`::

    @router.get("/api/kernels")
    async def list_kernels(kernels: Annotated[KernelService, use(KERNELS)]) -> list[Kernel]: ...
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Generic, TypeVar

from fastapi import APIRouter, Depends
from pydantic import BaseModel, ConfigDict
from starlette.requests import HTTPConnection

from junction.errors import ConfigError

if TYPE_CHECKING:
    from anyio.abc import TaskGroup

    from junction.database import PluginTables
    from junction.services import ServiceRegistry
    from junction.settings import ServerSettings

__all__ = [
    "Lifespan",
    "NoSettings",
    "Plugin",
    "PluginContext",
    "PluginSettings",
    "ServiceKey",
    "use",
]

T = TypeVar("T")
S = TypeVar("S", bound=BaseModel)


@dataclass(frozen=True, slots=True)
class ServiceKey(Generic[T]):
    """A typed name for a service, shared by the plugin that provides it and those that use it."""

    name: str

    def __repr__(self) -> str:
        return f"ServiceKey({self.name!r})"


class PluginSettings(BaseModel):
    """Base for plugin settings models: unknown keys are refused, every field is described."""

    model_config = ConfigDict(extra="forbid", frozen=True, coerce_numbers_to_str=True)


class NoSettings(PluginSettings):
    """The settings of a plugin that has none."""


Lifespan = Callable[["PluginContext[Any]"], AbstractAsyncContextManager[None]]
"""Runs while the server runs: code before ``yield`` starts the plugin, code after stops it."""


@dataclass(frozen=True, kw_only=True)
class Plugin:
    """Everything the core needs to know about a plugin before starting it.

    ``routers`` are included under the server's base URL. ``public_paths`` are path prefixes
    (relative to the base URL, e.g. ``"static/lab/"``) served without authentication.
    ``landing_page`` is where ``/`` redirects when this plugin is enabled.
    """

    name: str
    description: str
    settings: type[PluginSettings] = NoSettings
    routers: Sequence[APIRouter] = ()
    lifespan: Lifespan | None = None
    provides: Sequence[ServiceKey[Any]] = ()
    requires: Sequence[ServiceKey[Any]] = ()
    optional: Sequence[ServiceKey[Any]] = ()
    public_paths: Sequence[str] = ()
    landing_page: str | None = None
    tables: PluginTables | None = None
    """Tables this plugin owns in the shared database; migrated before any plugin starts."""
    order_hint: int = field(default=100)
    """Among plugins with no dependency between them, lower starts first (ties by name)."""

    def load_settings(self, raw: dict[str, Any]) -> PluginSettings:
        """Validate this plugin's section of the configuration.

        Raises :class:`ConfigError` naming the plugin and the offending key.
        """
        known = set(self.settings.model_fields)
        unknown = sorted(set(raw) - known)
        if unknown:
            valid = ", ".join(sorted(known)) or "none"
            raise ConfigError(
                f"unknown setting {self.name}.{unknown[0]}; {self.name} accepts: {valid}"
            )
        try:
            return self.settings.model_validate(raw)
        except ValueError as exc:
            raise ConfigError(f"invalid settings for plugin {self.name}: {exc}") from exc


class PluginContext(Generic[S]):
    """What a plugin's lifespan receives: its settings, the server's, and the service registry.

    ``task_group`` belongs to the server; tasks started there are cancelled at shutdown after
    every plugin has stopped.
    """

    def __init__(
        self,
        plugin: Plugin,
        settings: S,
        server: ServerSettings,
        services: ServiceRegistry,
        task_group: TaskGroup,
    ) -> None:
        self.plugin = plugin
        self.settings = settings
        self.server = server
        self.services = services
        self.task_group = task_group

    def get(self, key: ServiceKey[T]) -> T:
        """Return a service this plugin declared in ``requires`` (or ``optional``, if present)."""
        self._check_declared(key)
        return self.services.get(key)

    def get_optional(self, key: ServiceKey[T]) -> T | None:
        """Return a service from ``optional``, or None when no enabled plugin provides it."""
        self._check_declared(key)
        return self.services.get_optional(key)

    def provide(self, key: ServiceKey[T], service: T) -> None:
        """Register the implementation of a service this plugin declared in ``provides``."""
        if key not in self.plugin.provides:
            raise ConfigError(f"plugin {self.plugin.name} provides {key.name} without declaring it")
        self.services.provide(key, service)

    def _check_declared(self, key: ServiceKey[Any]) -> None:
        declared = (*self.plugin.requires, *self.plugin.optional, *self.plugin.provides)
        if key not in declared:
            raise ConfigError(
                f"plugin {self.plugin.name} uses {key.name} without declaring it in requires"
            )


def use(key: ServiceKey[T]) -> Any:
    """A FastAPI dependency that yields the service registered under ``key``.

    Use it as ``Annotated[KernelService, use(KERNELS)]`` in HTTP and WebSocket routes alike.
    """

    # async on purpose: FastAPI runs plain-def dependencies in a worker thread, which costs
    # ~150 us per request for what is a dictionary lookup.
    async def dependency(conn: HTTPConnection) -> T:
        registry: ServiceRegistry = conn.app.state.services
        return registry.get(key)

    dependency.__name__ = f"use_{key.name}"
    return Depends(dependency)
