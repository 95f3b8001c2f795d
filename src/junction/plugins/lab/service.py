"""The lab contracts: user settings, workspaces, config sections, events; keys and errors.

The lab plugin provides one implementation of each (files on disk, events in memory);
another plugin may provide the same keys instead (a database, a message bus), and routes
only ever see these Protocols.

Errors, all mapped to HTTP by the core::

    SettingsNotFound (NotFound)         404  no schema for that plugin id
    InvalidSettings (BadRequest)        400  not JSON5, not an object, or fails the schema
    WorkspaceNotFound (NotFound)        404  deleting a workspace that does not exist
    InvalidWorkspace (BadRequest)       400  not a workspace object, or its id does not match
    InvalidConfig (BadRequest)          400  a config section body that is not an object

The event contract (``EventBus``, ``EVENTS``, ``Event``, ``UnknownEventSchema``,
``InvalidEvent``) is the core's (:mod:`junction.events`), re-exported here unchanged.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, Protocol

from junction.errors import BadRequest, NotFound
from junction.events import EVENTS, Event, EventBus, InvalidEvent, UnknownEventSchema
from junction.plugin import ServiceKey
from junction.plugins.lab.models import SettingEntry

if TYPE_CHECKING:
    from junction.plugins.lab.nbconvert import Nbconvert
    from junction.plugins.lab.plugins import PluginSwitches

__all__ = [
    "CONFIG",
    "EVENTS",
    "NBCONVERT",
    "PLUGIN_SWITCHES",
    "SETTINGS",
    "WORKSPACES",
    "ConfigStore",
    "Event",
    "EventBus",
    "InvalidConfig",
    "InvalidEvent",
    "InvalidSettings",
    "InvalidWorkspace",
    "SettingsNotFound",
    "SettingsStore",
    "UnknownEventSchema",
    "WorkspaceNotFound",
    "WorkspaceStore",
]


class SettingsNotFound(NotFound):
    """No plugin schema has that id (``<package>:<plugin>``)."""


class InvalidSettings(BadRequest):
    """Raw settings that are not a JSON5 object or fail the plugin's schema; nothing saved."""


class WorkspaceNotFound(NotFound):
    """No workspace is saved under that id."""


class InvalidWorkspace(BadRequest):
    """A workspace body that is not ``{"data": {...}, "metadata": {"id": ...}}`` for its id."""


class InvalidConfig(BadRequest):
    """A config section body that is not a JSON object."""


class SettingsStore(Protocol):
    """Every plugin's settings: its schema (with admin defaults applied) and the user's values.

    Plugin ids look like ``@jupyterlab/apputils-extension:themes``; the schemas come from
    the core app and every prebuilt extension, the user's values are JSON5 text kept as
    written (comments included).
    """

    async def ids(self) -> list[str]:
        """The id of every plugin with a settings schema, sorted."""
        ...

    async def list(self) -> list[SettingEntry]:
        """Every plugin's settings; called for ``GET /lab/api/settings`` at UI startup.

        A user file that no longer validates shows as empty with a ``warning``.
        """
        ...

    async def get(self, plugin_id: str) -> SettingEntry:
        """One plugin's settings. Raises :class:`SettingsNotFound`."""
        ...

    async def save(self, plugin_id: str, raw: str) -> None:
        """Validate ``raw`` (JSON5 text) against the plugin's schema and keep it verbatim.

        Raises :class:`SettingsNotFound` and :class:`InvalidSettings`.
        """
        ...


class WorkspaceStore(Protocol):
    """Saved UI layouts (open documents, panel sizes), one per workspace id.

    A workspace is the JSON the UI sends: ``{"data": {...}, "metadata": {"id": ...}}``.
    The UI saves the current one every few seconds while the user rearranges things.
    """

    async def list(self) -> list[dict[str, Any]]:
        """Every saved workspace, sorted by id, with ``last_modified``/``created`` metadata."""
        ...

    async def get(self, workspace_id: str) -> dict[str, Any] | None:
        """The saved workspace, or None if there is none under that id."""
        ...

    async def save(self, workspace_id: str, workspace: Mapping[str, Any]) -> None:
        """Keep ``workspace``, replacing any previous one. Raises :class:`InvalidWorkspace`."""
        ...

    async def delete(self, workspace_id: str) -> None:
        """Forget a workspace. Raises :class:`WorkspaceNotFound`."""
        ...


class ConfigStore(Protocol):
    """Free-form JSON sections (``/api/config/<section>``), e.g. the announcements opt-in."""

    async def get(self, section: str) -> dict[str, Any]:
        """The section's data, ``{}`` if it was never written."""
        ...

    async def replace(self, section: str, data: Mapping[str, Any]) -> None:
        """Replace the whole section."""
        ...

    async def update(self, section: str, patch: Mapping[str, Any]) -> dict[str, Any]:
        """Deep-merge ``patch`` into the section (``null`` removes a key); returns the result."""
        ...


SETTINGS: ServiceKey[SettingsStore] = ServiceKey("lab.settings")
WORKSPACES: ServiceKey[WorkspaceStore] = ServiceKey("lab.workspaces")
CONFIG: ServiceKey[ConfigStore] = ServiceKey("lab.config")
NBCONVERT: ServiceKey[Nbconvert] = ServiceKey("nbconvert")
"""Notebook export (the lab plugin's own; other plugins may use it to export notebooks)."""
PLUGIN_SWITCHES: ServiceKey[PluginSwitches] = ServiceKey("lab.plugins")
"""Plugins disabled from the UI (the lab plugin's own)."""
