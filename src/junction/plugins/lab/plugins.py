"""``PluginSwitches``: turning JupyterLab plugins and extensions off and on from the UI.

The plugin manager (Settings > Plugin Manager) and the extension manager post enable and
disable commands. Choices are kept in the ``page_config`` config section as
``{"disabledExtensions": {name: true|false}}`` and merged into every page config, so they
apply on the next page load and survive restarts. ``false`` re-enables something an admin
file disabled.

Names an admin locked (``lab.locked_plugins``, ``lab.lock_all_plugins``) keep the state the
admin's files give them, whichever way the user's choice reaches the server:

- switching one from the UI is refused (403);
- writing one into the ``page_config`` section through ``/api/config`` is refused (403) by
  :class:`LockedPageConfig`, the config store the routes see;
- a choice already stored (saved before the lock, or written to the file by hand) is left
  out of the page config by :meth:`PluginSwitches.page_config`, so it never takes effect.

A rule locks a plugin id (``@jupyterlab/notebook-extension:tracker``) or a whole package
(``@jupyterlab/notebook-extension``). The UI disables a plugin by its id or by its package
name, so a locked plugin's package cannot be switched either: that would switch it too.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from junction.errors import Forbidden
from junction.plugins.lab.models import ActionResult, PluginLocks
from junction.plugins.lab.service import ConfigStore

__all__ = ["PAGE_CONFIG_SECTION", "LockedPageConfig", "PluginLocked", "PluginSwitches"]

PAGE_CONFIG_SECTION = "page_config"
_KEY = "disabledExtensions"


class PluginLocked(Forbidden):
    """The admin locked this plugin or extension; it cannot be switched from the UI."""


def _package(name: str) -> str:
    return name.partition(":")[0]


class PluginSwitches:
    """Disabled plugins and extensions, as chosen in the UI."""

    def __init__(self, config: ConfigStore, locked: Sequence[str], lock_all: bool) -> None:
        self.config = config
        self.locked = tuple(locked)
        self.lock_all = lock_all
        self._locked_packages = frozenset(_package(rule) for rule in self.locked)

    def locks(self) -> PluginLocks:
        """What may not be switched; the UI greys those out."""
        return PluginLocks(lockRules=list(self.locked), allLocked=self.lock_all)

    def is_locked(self, name: str) -> bool:
        """Whether switching ``name`` (``package`` or ``package:plugin``) would switch a
        locked plugin: it is locked, its package is, or it is the package of a locked one.
        """
        if self.lock_all:
            return True
        return (
            name in self.locked
            or _package(name) in self.locked
            or (":" not in name and name in self._locked_packages)
        )

    def check_section(self, section: str, data: Mapping[str, Any]) -> None:
        """Refuse a write to config section ``section`` that switches a locked name.

        Called before every ``/api/config`` write; only the ``page_config`` section holds
        switches. Raises :class:`PluginLocked`.
        """
        if section != PAGE_CONFIG_SECTION:
            return
        switches = data.get(_KEY)
        names = switches if isinstance(switches, Mapping | list) else ()
        for name in names:
            if isinstance(name, str) and self.is_locked(name):
                raise PluginLocked(f"{name} is locked by the administrator")

    async def page_config(self) -> dict[str, Any]:
        """The page config layer with the UI's choices (a frontend page config provider).

        Choices about locked names are left out, whatever the stored section says.
        """
        section = await self.config.get(PAGE_CONFIG_SECTION)
        switches = section.get(_KEY)
        if not isinstance(switches, dict):
            return {}
        return {_KEY: {k: v for k, v in switches.items() if not self.is_locked(k)}}

    async def switch(self, name: str, *, enabled: bool) -> ActionResult:
        """Enable or disable ``name``. Raises :class:`PluginLocked`."""
        if self.is_locked(name):
            raise PluginLocked(f"{name} is locked by the administrator")
        await self.config.update(PAGE_CONFIG_SECTION, {_KEY: {name: not enabled}})
        return ActionResult(status="ok", needs_restart=["frontend"])


class LockedPageConfig:
    """The config store routes see: ``store``, refusing writes that switch locked plugins."""

    def __init__(self, store: ConfigStore, switches: PluginSwitches) -> None:
        self.store = store
        self.switches = switches

    async def get(self, section: str) -> dict[str, Any]:
        """The section, ``{}`` if never written."""
        return await self.store.get(section)

    async def replace(self, section: str, data: Mapping[str, Any]) -> None:
        """Replace the section. Raises :class:`PluginLocked`."""
        self.switches.check_section(section, data)
        await self.store.replace(section, data)

    async def update(self, section: str, patch: Mapping[str, Any]) -> dict[str, Any]:
        """Deep-merge ``patch`` into the section. Raises :class:`PluginLocked`."""
        self.switches.check_section(section, patch)
        return await self.store.update(section, patch)
