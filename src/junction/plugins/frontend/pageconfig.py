"""The page config: what the HTML shell tells JupyterLab about this server.

JupyterLab reads it from ``<script id="jupyter-config-data">`` before anything else: URLs of
every API it calls, the installed prebuilt extensions, and feature switches. It is layered,
lowest first:

1. :func:`server_page_config`: what the server knows (URLs under the base URL, directories,
   versions, switches), with :func:`notebook_page_config` laid over it on Notebook 7's pages;
2. ``page_config.json[5]`` in the app settings dir, then ``labconfig/page_config.d/*.json``
   and ``labconfig/page_config.json`` in every Jupyter config dir, system first, user last
   (``jupyter labextension disable`` writes there);
3. the prebuilt extensions found now, and the plugins they declare disabled;
4. keys added by other plugins through ``FrontendService.add_page_config``;
5. the ``frontend.page_config`` setting;
6. per page: mode, workspace, tree path (Notebook 7: the tree path on its tree page only;
   its templates add ``notebookPage``).

Notebook 7 reads the same keys as JupyterLab, pointing at the same ``/lab/api/*`` APIs and
``/lab/extensions/``, so both UIs share settings, workspaces and prebuilt extensions.
"""

from __future__ import annotations

import sys
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

from jupyter_core.paths import jupyter_config_dir, jupyter_config_path

from junction.jsonfiles import merge, read_json_object
from junction.plugins.frontend.models import FederatedExtension, LabLayout, NotebookLayout
from junction.settings import ServerSettings

__all__ = [
    "NOTEBOOK_VERSION",
    "UNTRACKED_MESSAGE_TYPES",
    "apply_extensions",
    "disabled_list",
    "normalize",
    "notebook_page_config",
    "read_static_page_config",
    "server_page_config",
]

NOTEBOOK_VERSION = "[2, 21, 1]"
"""The Jupyter server API level this server speaks, in the form JupyterLab parses.

JupyterLab reads it as the server version; chunked uploads of files over 15 MiB stay
enabled only for versions below 4 or from 5.1 (see the contents contract).
"""

UNTRACKED_MESSAGE_TYPES = (
    "comm_info_request",
    "comm_info_reply",
    "kernel_info_request",
    "kernel_info_reply",
    "shutdown_request",
    "shutdown_reply",
    "interrupt_request",
    "interrupt_reply",
    "debug_request",
    "debug_reply",
    "stream",
    "display_data",
    "update_display_data",
    "execute_input",
    "execute_result",
    "error",
    "status",
    "clear_output",
    "debug_event",
    "input_request",
    "input_reply",
)
"""Kernel message types that do not count as kernel activity (shown as busy in the UI)."""

_DISABLED = "disabledExtensions"
_DEFERRED = "deferredExtensions"


def server_page_config(
    layout: LabLayout,
    server: ServerSettings,
    labextensions: Sequence[Path],
    extra: Sequence[Path],
    *,
    terminals_available: bool = False,
) -> dict[str, Any]:
    """The keys the server itself knows, before any file or plugin adds to them.

    ``terminals_available`` is whether a terminals service runs: JupyterLab and Notebook 7
    offer terminals (launcher, menus, running list) only when ``terminalsAvailable`` is true.
    """
    base = server.base_url
    root = server.root_dir.as_posix()
    urls = {
        "appUrl": "/lab",
        "labextensionsUrl": "/lab/extensions",
        "licensesUrl": "/lab/api/licenses",
        "listingsUrl": "/lab/api/listings",
        "settingsUrl": "/lab/api/settings",
        "themesUrl": "/lab/api/themes",
        "translationsApiUrl": "/lab/api/translations",
        "treeUrl": "/lab/tree",
        "workspacesApiUrl": "/lab/api/workspaces",
    }
    config: dict[str, Any] = {
        "appName": layout.app_name,
        "appNamespace": "lab",
        "appVersion": layout.app_version,
        "appSettingsDir": layout.settings_dir.as_posix(),
        "baseUrl": base,
        "wsUrl": "",
        # The UI sends the login cookie and echoes the _xsrf cookie; the token stays out of
        # the page so it never lands in a saved page or a screenshot.
        "token": "",
        "buildAvailable": False,
        "buildCheck": False,
        "cacheFiles": False,
        "copyAbsolutePath": False,
        "devMode": False,
        _DISABLED: {},
        "exposeAppInBrowser": False,
        "extensionManager": {
            "name": "read-only",
            "can_install": False,
            "install_path": sys.prefix,
        },
        "extraLabextensionsPath": [p.as_posix() for p in extra],
        "fullMathjaxUrl": "",
        "fullStaticUrl": f"{base}static/lab",
        "ignorePlugins": [],
        "labextensionsPath": [p.as_posix() for p in labextensions],
        "mathjaxConfig": "TeX-AMS_HTML-full,Safe",
        "news": {"disabled": False},
        "notebookStartsKernel": True,
        "notebookVersion": NOTEBOOK_VERSION,
        "preferredPath": "/",
        "quitButton": True,
        "rootUri": server.root_dir.as_uri(),
        "schemasDir": layout.schemas_dir.as_posix(),
        "serverRoot": root,
        "staticDir": layout.static_dir.as_posix(),
        "templatesDir": layout.static_dir.as_posix(),
        "terminalsAvailable": terminals_available,
        "themesDir": layout.themes_dir.as_posix(),
        "untracked_message_types": list(UNTRACKED_MESSAGE_TYPES),
        "userSettingsDir": "",
        "virtualDocumentsUri": (server.root_dir / ".virtual_documents").as_uri(),
        "workspacesDir": "",
        "allow_hidden_files": False,
        "delete_to_trash": False,
        # The collaboration plugin turns real-time collaboration on (and sets
        # serverSideExecution) through its own page config; without it, an installed
        # jupyter-docprovider must fall back to the classic contents models.
        "disableRTC": True,
    }
    for key, url in urls.items():
        config[key] = url
        config["full" + key[0].upper() + key[1:]] = base + url.lstrip("/")
    return config


def notebook_page_config(notebook: NotebookLayout, server: ServerSettings) -> dict[str, Any]:
    """Layer 1 on Notebook 7's pages: what differs from JupyterLab's server keys.

    Its own name, version and bundle; ``frontendUrl`` and ``jupyterConfigDir`` as Notebook 7
    sends them; no classic notebook alongside.
    """
    return {
        "appName": "Jupyter Notebook",
        "appNamespace": "notebook",
        "appVersion": notebook.version,
        "frontendUrl": server.base_url,
        "fullStaticUrl": f"{server.base_url}static/notebook",
        "jupyterConfigDir": Path(jupyter_config_dir()).as_posix(),
        "nbclassic_enabled": False,
        "staticDir": notebook.static_dir.as_posix(),
        "templatesDir": notebook.templates_dir.as_posix(),
    }


def read_static_page_config(
    layout: LabLayout, config_dirs: Iterable[Path] | None = None
) -> dict[str, Any]:
    """Layer 2: the page config files on disk, merged. Blocking: run in a worker thread.

    ``config_dirs`` are Jupyter config dirs, highest priority first (default: Jupyter's
    config path). Unreadable files are logged and skipped so one bad file cannot take the
    UI down.
    """
    result: dict[str, Any] = {}
    for name in ("page_config.json5", "page_config.json"):
        path = layout.settings_dir / name
        data = read_json_object(path, "page config file")
        if data is not None:
            merge(result, normalize(data))
            break
    if config_dirs is None:
        config_dirs = [Path(p) for p in jupyter_config_path()]
    for directory in reversed(list(config_dirs)):
        labconfig = directory / "labconfig"
        dropins = sorted(labconfig.glob("page_config.d/*.json"))
        for path in [*dropins, labconfig / "page_config.json"]:
            data = read_json_object(path, "page config file")
            if data is not None:
                merge(result, normalize(data))
    return result


def apply_extensions(config: dict[str, Any], extensions: Sequence[FederatedExtension]) -> None:
    """Layer 3: list the prebuilt extensions and honour the plugins they disable."""
    config["federated_extensions"] = [ext.page_config_entry() for ext in extensions]
    disabled = config.setdefault(_DISABLED, {})
    if isinstance(disabled, list):
        disabled = config[_DISABLED] = dict.fromkeys(disabled, True)
    for extension in extensions:
        for name in extension.disabled_extensions:
            disabled.setdefault(name, True)


def disabled_list(value: Any) -> list[str]:
    """``disabledExtensions`` as the list the UI expects (files may hold ``{name: bool}``)."""
    if isinstance(value, Mapping):
        return [str(name) for name, off in value.items() if off]
    if isinstance(value, list):
        return [str(name) for name in value]
    return []


def normalize(data: Mapping[str, Any]) -> dict[str, Any]:
    """A copy of a page config layer with list-valued extension switches made ``{name: True}``."""
    data = dict(data)
    for key in (_DISABLED, _DEFERRED):
        if isinstance(data.get(key), list):
            data[key] = dict.fromkeys(data[key], True)
    return data
