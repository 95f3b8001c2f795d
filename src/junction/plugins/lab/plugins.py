"""``PluginSwitches``: turning JupyterLab plugins and extensions off and on from the UI.

The plugin manager (Settings > Plugin Manager) and the extension manager post enable and
disable commands. Choices are kept in the ``page_config`` config section as
``{"disabledExtensions": {name: true|false}}`` and merged into every page config, so they
apply on the next page load and survive restarts. ``false`` re-enables something an admin
file disabled. Names an admin locked (``lab.locked_plugins``, ``lab.lock_all_plugins``)
cannot be switched.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from junction.errors import Forbidden
from junction.plugins.lab.models import ActionResult, PluginLocks
from junction.plugins.lab.service import ConfigStore

__all__ = ["PAGE_CONFIG_SECTION", "PluginLocked", "PluginSwitches"]

PAGE_CONFIG_SECTION = "page_config"
_KEY = "disabledExtensions"


class PluginLocked(Forbidden):
    """The admin locked this plugin or extension; it cannot be switched from the UI."""


class PluginSwitches:
    """Disabled plugins and extensions, as chosen in the UI."""

    def __init__(self, config: ConfigStore, locked: Sequence[str], lock_all: bool) -> None:
        self.config = config
        self.locked = tuple(locked)
        self.lock_all = lock_all

    def locks(self) -> PluginLocks:
        """What may not be switched; the UI greys those out."""
        return PluginLocks(lockRules=list(self.locked), allLocked=self.lock_all)

    def is_locked(self, name: str) -> bool:
        """Whether ``name`` (``package`` or ``package:plugin``) is locked."""
        if self.lock_all:
            return True
        package = name.partition(":")[0]
        return name in self.locked or package in self.locked

    async def page_config(self) -> dict[str, Any]:
        """The page config layer with the UI's choices (a frontend page config provider)."""
        section = await self.config.get(PAGE_CONFIG_SECTION)
        switches = section.get(_KEY)
        return {_KEY: dict(switches)} if isinstance(switches, dict) else {}

    async def switch(self, name: str, *, enabled: bool) -> ActionResult:
        """Enable or disable ``name``. Raises :class:`PluginLocked`."""
        if self.is_locked(name):
            raise PluginLocked(f"{name} is locked by the administrator")
        await self.config.update(PAGE_CONFIG_SECTION, {_KEY: {name: not enabled}})
        return ActionResult(status="ok", needs_restart=["frontend"])
