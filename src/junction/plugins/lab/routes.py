"""Routes under ``/lab/api``: the REST APIs JupyterLab 4 calls besides the Jupyter server's.

All need a login except the theme files, which (like the core bundle) hold no user data.
"""

from __future__ import annotations

from typing import Annotated, Any

import anyio
from fastapi import APIRouter, Body, Query, Request
from fastapi.responses import Response

from junction.errors import BadRequest, NotFound
from junction.plugin import use
from junction.plugins.frontend.models import PageRequest
from junction.plugins.frontend.service import FRONTEND, FrontendService
from junction.plugins.lab.licenses import ReportFormat, license_bundles, render_report
from junction.plugins.lab.models import (
    ActionResult,
    BuildStatus,
    ExtensionAction,
    LanguagePacks,
    Listings,
    News,
    PluginAction,
    PluginLocks,
    SettingEntry,
    SettingId,
    SettingsList,
    SettingsUpdate,
    UpdateNotification,
    WorkspaceIndex,
    WorkspaceList,
)
from junction.plugins.lab.plugins import PluginSwitches
from junction.plugins.lab.service import (
    PLUGIN_SWITCHES,
    SETTINGS,
    WORKSPACES,
    SettingsNotFound,
    SettingsStore,
    WorkspaceStore,
)
from junction.plugins.lab.translations import DEFAULT_LOCALE, language_pack, language_packs
from junction.staticfiles import resolve_inside, send_file

__all__ = ["LOCALE_SETTING", "current_locale", "router"]

router = APIRouter(tags=["lab"])

Frontend = Annotated[FrontendService, use(FRONTEND)]
Settings = Annotated[SettingsStore, use(SETTINGS)]
Workspaces = Annotated[WorkspaceStore, use(WORKSPACES)]
Switches = Annotated[PluginSwitches, use(PLUGIN_SWITCHES)]

LOCALE_SETTING = "@jupyterlab/translation-extension:plugin"
"""The plugin whose ``locale`` setting chooses the UI language."""


def _flag(value: str) -> bool:
    """Query flags as JupyterLab writes them: ``true``/``false``, ``1``/``0``."""
    return value.strip().lower() in ("1", "true", "yes")


# --- settings ---------------------------------------------------------------------------


@router.get("/lab/api/settings", response_model_exclude_none=False)
@router.get("/lab/api/settings/", include_in_schema=False)
async def list_settings(
    settings: Settings, ids_only: Annotated[str, Query()] = "false"
) -> SettingsList:
    """Every plugin's settings (``?ids_only=true``: only the ids), read at UI startup."""
    if _flag(ids_only):
        return SettingsList(settings=[SettingId(id=i) for i in await settings.ids()])
    return SettingsList(settings=await settings.list())


@router.get("/lab/api/settings/{plugin_id:path}")
async def get_settings(settings: Settings, plugin_id: str) -> SettingEntry:
    """One plugin's schema and user settings."""
    return await settings.get(plugin_id)


@router.put("/lab/api/settings/{plugin_id:path}", status_code=204)
async def put_settings(settings: Settings, plugin_id: str, body: SettingsUpdate) -> Response:
    """Save a plugin's settings (JSON5 text, validated against its schema)."""
    await settings.save(plugin_id, body.raw)
    return Response(status_code=204)


async def current_locale(settings: SettingsStore) -> str:
    """The locale the user chose in the language menu (``en`` when none is chosen)."""
    try:
        entry = await settings.get(LOCALE_SETTING)
    except SettingsNotFound:
        return DEFAULT_LOCALE
    chosen = entry.settings.get("locale") or entry.schema_.get("properties", {}).get(
        "locale", {}
    ).get("default")
    if not isinstance(chosen, str) or chosen == "default":
        return DEFAULT_LOCALE
    return chosen


# --- workspaces -------------------------------------------------------------------------


@router.get("/lab/api/workspaces")
@router.get("/lab/api/workspaces/", include_in_schema=False)
async def list_workspaces(workspaces: Workspaces) -> WorkspaceList:
    """Every saved workspace."""
    values = await workspaces.list()
    ids = [str(w.get("metadata", {}).get("id", "")) for w in values]
    return WorkspaceList(workspaces=WorkspaceIndex(ids=ids, values=values))


@router.get("/lab/api/workspaces/{workspace_id:path}")
async def get_workspace(workspaces: Workspaces, workspace_id: str) -> dict[str, Any]:
    """A saved workspace; an empty one for an id never saved (the UI starts from it)."""
    found = await workspaces.get(workspace_id)
    if found is not None:
        return found
    return {"data": {}, "metadata": {"id": "/" + workspace_id.lstrip("/")}}


@router.put("/lab/api/workspaces/{workspace_id:path}", status_code=204)
async def put_workspace(
    workspaces: Workspaces, workspace_id: str, workspace: Annotated[dict[str, Any], Body()]
) -> Response:
    """Save a workspace (the UI does so every few seconds while the layout changes)."""
    await workspaces.save(workspace_id, workspace)
    return Response(status_code=204)


@router.delete("/lab/api/workspaces/{workspace_id:path}", status_code=204)
async def delete_workspace(workspaces: Workspaces, workspace_id: str) -> Response:
    """Forget a workspace."""
    await workspaces.delete(workspace_id)
    return Response(status_code=204)


# --- translations, listings, build, news ------------------------------------------------


@router.get("/lab/api/translations")
@router.get("/lab/api/translations/", include_in_schema=False)
async def list_language_packs(settings: Settings) -> LanguagePacks:
    """Installed languages, named in the user's current language."""
    locale = await current_locale(settings)
    data = await anyio.to_thread.run_sync(language_packs, locale)
    return LanguagePacks(data=data)


@router.get("/lab/api/translations/{locale}")
async def get_language_pack(settings: Settings, locale: str) -> LanguagePacks:
    """A language pack's catalogs; ``default`` means the user's chosen language."""
    if locale == "default":
        locale = await current_locale(settings)
    data, message = await anyio.to_thread.run_sync(language_pack, locale)
    return LanguagePacks(data=data, message=message)


@router.get("/lab/api/listings/{path:path}")
async def listings(path: str) -> Listings:
    """Extension allow/block lists: none are configured."""
    return Listings()


@router.get("/lab/api/build")
async def build_status() -> BuildStatus:
    """The app is prebuilt: always ``stable``."""
    return BuildStatus()


@router.get("/lab/api/news")
async def news() -> News:
    """No news feed is published."""
    return News()


@router.get("/lab/api/update")
async def update_check() -> UpdateNotification:
    """No update check is made."""
    return UpdateNotification()


# --- themes and licenses ----------------------------------------------------------------


@router.api_route("/lab/api/themes/{path:path}", methods=["GET", "HEAD"], include_in_schema=False)
async def theme_file(request: Request, frontend: Frontend, path: str) -> Response:
    """A theme's CSS or asset: the core app's themes, then prebuilt extensions' themes."""
    core = resolve_inside(frontend.layout.themes_dir, path)
    if core is not None and await anyio.Path(core).is_file():
        return await send_file(request, core)
    parts = path.split("/")
    split = 2 if parts[0].startswith("@") else 1
    name = "/".join(parts[:split])
    target = await frontend.find_extension_file(name, f"themes/{path}")
    if target is None:
        raise NotFound(f"no such theme file: {path}")
    return await send_file(request, target)


@router.get("/lab/api/licenses")
@router.get("/lab/api/licenses/", include_in_schema=False)
async def licenses(
    frontend: Frontend,
    full_text: str = "true",
    format: str = "json",
    bundles: str = "*",
    download: str = "0",
) -> Response:
    """Third-party licenses of the core bundle and each extension (JSON, CSV or Markdown).

    ``bundles`` selects bundles by name: comma-separated prefixes where ``*`` is a wildcard
    (never a regular expression; see :func:`.licenses.bundle_matches`).
    """
    if format not in ("json", "csv", "markdown"):
        raise BadRequest(f"unsupported report format {format!r}; use json, csv or markdown")
    report_format: ReportFormat = format  # type: ignore[assignment]  # checked just above
    extensions = await frontend.federated_extensions()
    found = await anyio.to_thread.run_sync(license_bundles, frontend.layout, extensions, bundles)
    text, media_type = render_report(found, report_format, full_text=_flag(full_text))
    headers = {}
    if _flag(download):
        suffix = {"json": ".json", "csv": ".csv", "markdown": ".md"}[format]
        name = frontend.layout.app_name.lower()
        headers["Content-Disposition"] = f'attachment; filename="{name}-licenses{suffix}"'
    return Response(text, media_type=media_type, headers=headers)


# --- extensions and plugins -------------------------------------------------------------


@router.get("/lab/api/extensions")
async def list_extensions(frontend: Frontend) -> list[dict[str, Any]]:
    """The installed prebuilt extensions (read-only: extensions are installed with pip)."""
    config = await frontend.page_config(PageRequest())
    disabled = set(config.get("disabledExtensions", []))
    result = []
    for ext in await frontend.federated_extensions():
        result.append(
            {
                "name": ext.name,
                "description": ext.description,
                "homepage_url": ext.url,
                "pkg_type": "prebuilt",
                "allowed": True,
                "approved": False,
                "companion": None,
                "core": False,
                "enabled": ext.name not in disabled,
                "installed": True,
                "installed_version": ext.version,
                "latest_version": ext.version,
                "status": "ok",
                "author": None,
                "license": ext.package.get("license"),
                "bug_tracker_url": None,
                "documentation_url": None,
                "package_manager_url": None,
                "repository_url": ext.url or None,
                "install": ext.install,
            }
        )
    return result


@router.post("/lab/api/extensions", status_code=201)
async def extension_action(switches: Switches, action: ExtensionAction) -> ActionResult:
    """Enable or disable an extension; installing is refused (use pip)."""
    if action.cmd not in ("enable", "disable"):
        raise BadRequest(
            f"cannot {action.cmd} extensions here: install and uninstall them with pip"
        )
    if not action.extension_name:
        raise BadRequest("extension_name is required")
    return await switches.switch(action.extension_name, enabled=action.cmd == "enable")


@router.get("/lab/api/plugins")
async def plugin_locks(switches: Switches) -> PluginLocks:
    """Which plugins users may not switch."""
    return switches.locks()


@router.post("/lab/api/plugins", status_code=201)
async def plugin_action(switches: Switches, action: PluginAction) -> ActionResult:
    """Enable or disable a plugin (applies on the next page load)."""
    return await switches.switch(action.plugin_name, enabled=action.cmd == "enable")
