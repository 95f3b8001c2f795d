"""Request and response bodies of the lab APIs, as JupyterLab 4 sends and expects them."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

__all__ = [
    "ActionResult",
    "BuildStatus",
    "EventPost",
    "ExtensionAction",
    "LanguageName",
    "LanguagePacks",
    "Listings",
    "News",
    "PluginAction",
    "PluginLocks",
    "SettingEntry",
    "SettingId",
    "SettingsList",
    "SettingsUpdate",
    "UpdateNotification",
    "WorkspaceIndex",
    "WorkspaceList",
]


class SettingEntry(BaseModel):
    """One plugin's settings: schema (admin defaults applied), user values, file times."""

    model_config = ConfigDict(populate_by_name=True)

    id: str = Field(description="Plugin id, '<package>:<plugin>'.")
    schema_: dict[str, Any] = Field(alias="schema", description="The plugin's JSON schema.")
    version: str = Field(description="Version of the package that ships the schema.")
    raw: str = Field(description="The user's settings as written (JSON5, comments kept).")
    settings: dict[str, Any] = Field(description="The user's settings, parsed.")
    warning: str | None = Field(None, description="Why stored settings were ignored.")
    last_modified: str | None = Field(None, description="When the user last saved them.")
    created: str | None = Field(None, description="When they were first saved.")


class SettingId(BaseModel):
    """A plugin id, as ``?ids_only=true`` lists them."""

    id: str


class SettingsList(BaseModel):
    """``GET /lab/api/settings``."""

    settings: list[SettingEntry] | list[SettingId]


class SettingsUpdate(BaseModel):
    """``PUT /lab/api/settings/{id}``: the new settings as JSON5 text."""

    raw: str = Field(description="JSON5 text of an object valid against the plugin's schema.")


class WorkspaceIndex(BaseModel):
    """Ids and values of the saved workspaces, in the same order."""

    ids: list[str]
    values: list[dict[str, Any]]


class WorkspaceList(BaseModel):
    """``GET /lab/api/workspaces``."""

    workspaces: WorkspaceIndex


class LanguageName(BaseModel):
    """How a locale is called, in the UI's language and in its own."""

    displayName: str  # noqa: N815 - wire name
    nativeName: str  # noqa: N815 - wire name


class LanguagePacks(BaseModel):
    """``GET /lab/api/translations`` and ``/{locale}``: data plus a message (never an error)."""

    data: dict[str, Any]
    message: str = ""


class Listings(BaseModel):
    """Extension allow/block lists for the extension manager (none configured)."""

    blocked_extensions_uris: list[str] = Field(default_factory=list)
    allowed_extensions_uris: list[str] = Field(default_factory=list)
    blocked_extensions: list[dict[str, Any]] = Field(default_factory=list)
    allowed_extensions: list[dict[str, Any]] = Field(default_factory=list)


class BuildStatus(BaseModel):
    """``GET /lab/api/build``: prebuilt bundles never need a build."""

    status: Literal["stable", "needed", "building"] = "stable"
    message: str = ""


class PluginLocks(BaseModel):
    """``GET /lab/api/plugins``: which plugins users may not switch."""

    lockRules: list[str]  # noqa: N815 - wire name
    allLocked: bool  # noqa: N815 - wire name


class PluginAction(BaseModel):
    """``POST /lab/api/plugins``."""

    cmd: Literal["enable", "disable"]
    plugin_name: str = Field(min_length=1)


class ExtensionAction(BaseModel):
    """``POST /lab/api/extensions`` (refused: extensions are installed with pip)."""

    cmd: str
    extension_name: str = ""
    extension_version: str | None = None


class ActionResult(BaseModel):
    """What a plugin switch did; ``needs_restart`` names what must reload."""

    status: Literal["ok", "warning", "error"]
    message: str | None = None
    needs_restart: list[str] = Field(default_factory=list)


class News(BaseModel):
    """``GET /lab/api/news``: this server publishes none."""

    news: list[dict[str, Any]] = Field(default_factory=list)


class UpdateNotification(BaseModel):
    """``GET /lab/api/update``: no update check is made."""

    notification: dict[str, Any] | None = None


class EventPost(BaseModel):
    """``POST /api/events``: an event to validate and deliver."""

    schema_id: str
    version: str | int
    data: dict[str, Any]
    timestamp: str | None = None
