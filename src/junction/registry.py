"""Finding plugins, choosing the enabled ones, and checking that they compose.

Discovery reads the ``junction.plugins`` entry-point group; being installed never enables a
plugin. The enabled set is the profile's plugins, plus ``enable``, minus ``disable``. Before
anything starts, :func:`resolve` checks the set and returns the start order, or raises
:class:`~junction.errors.PluginGraphError` naming the plugins involved and the fix.
"""

from __future__ import annotations

import graphlib
import importlib
import logging
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from importlib.metadata import entry_points
from pathlib import Path
from typing import Any

from fastapi.routing import APIRoute, APIWebSocketRoute
from starlette.routing import Mount

from junction.errors import ConfigError, PluginGraphError
from junction.plugin import Plugin, ServiceKey
from junction.services import AUTH, DATABASE, REAPER, SERVER
from junction.spec.contract import Contract, check_described

__all__ = [
    "ENTRY_POINT_GROUP",
    "PROFILES",
    "Composition",
    "Profile",
    "contract_of",
    "discover",
    "enabled_names",
    "resolve",
]

ENTRY_POINT_GROUP = "junction.plugins"
CORE_SERVICES: frozenset[ServiceKey[Any]] = frozenset({SERVER, AUTH, REAPER, DATABASE})


@dataclass(frozen=True)
class Profile:
    """A named set of plugins, with defaults for their settings that suit the role.

    ``defaults`` sit below every configuration layer: the config file, the environment and
    the command line all override them.
    """

    plugins: tuple[str, ...]
    description: str
    defaults: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)


_FULL = (
    "contents",
    "kernelspecs",
    "kernels",
    "sessions",
    "terminals",
    "frontend",
    "lab",
    "apps",
    "collaboration",
    "uploads",
)

PROFILES: Mapping[str, Profile] = {
    "full": Profile((*_FULL, "jobs"), "JupyterLab, files and kernels in one process"),
    "multiuser": Profile(
        (*_FULL, "jobs", "users"),
        "full, for many users on one server: accounts, logins, tokens, per-user kernels",
    ),
    "hub": Profile(
        (*_FULL, "hub"),
        "full, as a JupyterHub single-user server (what junction-singleuser runs)",
    ),
    "gateway": Profile(
        ("kernelspecs", "kernels", "sessions"),
        "a kernel gateway for remote clients",
    ),
    "kernels": Profile(
        ("kernelspecs", "kernels", "sessions"),
        "the kernels half of the microservice layout (behind a proxy, listing on)",
    ),
    "ui": Profile(("contents", "frontend", "lab"), "the UI and files, with kernels elsewhere"),
    "contents": Profile(("contents",), "a file server"),
    "none": Profile((), "the core alone"),
}
"""The profiles ``--profile`` chooses from."""

log = logging.getLogger("junction.registry")


def discover() -> dict[str, Any]:
    """Return the entry points of every installed plugin by name, without importing them."""
    return {ep.name: ep for ep in entry_points(group=ENTRY_POINT_GROUP)}


def load(name: str, available: Mapping[str, Any]) -> Plugin:
    """Import one plugin by name; raises :class:`ConfigError` if it is unknown or broken."""
    try:
        entry = available[name]
    except KeyError:
        known = ", ".join(sorted(available)) or "none"
        raise ConfigError(f"unknown plugin {name!r}; installed plugins: {known}") from None
    try:
        plugin = entry.load()
    except Exception as exc:
        raise ConfigError(f"plugin {name!r} failed to import: {exc!r}") from exc
    if not isinstance(plugin, Plugin):
        raise ConfigError(f"entry point {name!r} does not point at a junction Plugin")
    if plugin.name != name:
        raise ConfigError(f"entry point {name!r} loads a plugin named {plugin.name!r}")
    return plugin


def contract_of(name: str, available: Mapping[str, Any]) -> Contract:
    """The spec files of an installed plugin: beside the module its entry point names.

    The plugin must be loaded (see :func:`load`) first.
    """
    module = importlib.import_module(available[name].module)
    if module.__file__ is None:
        raise ConfigError(f"plugin {name!r} has no module file to find its spec files by")
    return Contract(Path(module.__file__).parent)


def enabled_names(profile: str, enable: Iterable[str], disable: Iterable[str]) -> list[str]:
    """The names a profile plus ``enable`` minus ``disable`` selects, in a stable order."""
    try:
        base = PROFILES[profile].plugins
    except KeyError:
        known = ", ".join(sorted(PROFILES))
        raise ConfigError(f"unknown profile {profile!r}; profiles: {known}") from None
    disabled = set(disable)
    names = [name for name in (*base, *enable) if name not in disabled]
    return list(dict.fromkeys(names))


@dataclass(frozen=True)
class Composition:
    """A checked set of plugins: the start order and who provides which service."""

    order: tuple[Plugin, ...]
    providers: Mapping[ServiceKey[Any], Plugin]
    contracts: Mapping[str, Contract] = field(default_factory=dict)
    """The spec files of the plugins loaded from entry points, by plugin name, in start order."""

    def edges(self) -> list[tuple[str, str, str, bool]]:
        """``(user, provider, service, required)`` for every service dependency."""
        result = []
        for plugin in self.order:
            for required, keys in ((True, plugin.requires), (False, plugin.optional)):
                for key in keys:
                    provider = self.providers.get(key)
                    if provider is not None:
                        result.append((plugin.name, provider.name, key.name, required))
        return result


def _providers_hint(key: ServiceKey[Any], candidates: Sequence[Plugin]) -> str:
    names = sorted(p.name for p in candidates if key in p.provides)
    if names:
        return f"; enable {' or '.join(names)}"
    return "; no installed plugin provides it"


def _route_claims(plugin: Plugin) -> Iterable[tuple[str, str]]:
    for router in plugin.routers:
        for route in router.routes:
            if isinstance(route, APIRoute):
                for method in sorted(route.methods or ()):
                    yield method, route.path
            elif isinstance(route, APIWebSocketRoute):
                yield "WEBSOCKET", route.path
            elif isinstance(route, Mount):
                yield "MOUNT", route.path


def resolve(plugins: Sequence[Plugin], candidates: Sequence[Plugin] = ()) -> Composition:
    """Check that ``plugins`` compose and return them in start order.

    ``candidates`` are installed plugins that are not enabled; they only improve messages.
    Raises :class:`PluginGraphError` for a doubled plugin name, two providers of a service,
    a required service nobody provides, a dependency cycle, or two plugins claiming a route.
    """
    by_name: dict[str, Plugin] = {}
    for plugin in plugins:
        if plugin.name in by_name:
            raise PluginGraphError(f"plugin {plugin.name} is enabled twice")
        by_name[plugin.name] = plugin

    providers: dict[ServiceKey[Any], Plugin] = {}
    for plugin in plugins:
        for key in plugin.provides:
            if key in CORE_SERVICES:
                raise PluginGraphError(
                    f"plugin {plugin.name} provides {key.name}, which the core provides"
                )
            if key in providers:
                raise PluginGraphError(
                    f"service {key.name} is provided by both {providers[key].name} and "
                    f"{plugin.name}; disable one of them"
                )
            providers[key] = plugin

    everyone = [*plugins, *candidates]
    graph: dict[str, set[str]] = {}
    for plugin in plugins:
        deps: set[str] = set()
        for key in plugin.requires:
            if key in CORE_SERVICES:
                continue
            if key not in providers:
                raise PluginGraphError(
                    f"{plugin.name} requires {key.name}{_providers_hint(key, everyone)}"
                )
            deps.add(providers[key].name)
        for key in plugin.optional:
            if key in providers:
                deps.add(providers[key].name)
        deps.discard(plugin.name)
        graph[plugin.name] = deps

    sorter = graphlib.TopologicalSorter(graph)
    try:
        sorter.prepare()
    except graphlib.CycleError as exc:
        cycle = " -> ".join(exc.args[1])
        raise PluginGraphError(f"plugin dependency cycle: {cycle}") from None
    order: list[Plugin] = []
    while sorter.is_active():
        ready = sorted(sorter.get_ready(), key=lambda n: (by_name[n].order_hint, n))
        order.extend(by_name[name] for name in ready)
        sorter.done(*ready)

    claims: dict[tuple[str, str], str] = {}
    for plugin in order:
        for claim in _route_claims(plugin):
            owner = claims.setdefault(claim, plugin.name)
            if owner != plugin.name:
                method, path = claim
                raise PluginGraphError(
                    f"plugins {owner} and {plugin.name} both claim {method} {path}"
                )
    return Composition(order=tuple(order), providers=providers)


def compose(
    names: Sequence[str], extra: Sequence[Plugin] = (), available: Mapping[str, Any] | None = None
) -> Composition:
    """Load the named plugins (plus ready-made ``extra`` ones) and :func:`resolve` them.

    Each plugin loaded by name must describe every route it serves in the spec files it ships
    (:func:`~junction.spec.check_described`); ready-made ``extra`` plugins are not checked.
    """
    available = discover() if available is None else available
    plugins = [load(name, available) for name in names]
    plugins.extend(extra)
    try:
        composition = resolve(plugins)
    except PluginGraphError:
        # Only now import the plugins that are not enabled, to name which one would help.
        enabled = {p.name for p in plugins}
        candidates = []
        for name in sorted(set(available) - enabled):
            try:
                candidates.append(load(name, available))
            except ConfigError as exc:
                log.debug("ignoring plugin %s for hints: %s", name, exc)
        return resolve(plugins, candidates)
    contracts: dict[str, Contract] = {}
    for plugin in composition.order:
        if plugin.name in names and plugin.name in available:
            contract = contract_of(plugin.name, available)
            check_described(plugin.name, plugin.routers, contract)
            contracts[plugin.name] = contract
    return replace(composition, contracts=contracts)
