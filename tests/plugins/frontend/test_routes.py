"""The JupyterLab pages and the files they load, served in-process from the installed app."""

from __future__ import annotations

import json
import re
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import pytest

from junction.errors import ConfigError
from junction.plugin import Plugin, PluginContext
from junction.plugins.frontend import FRONTEND
from junction.testing import TEST_TOKEN

from .conftest import EXTENSION_ENTRY, Serve

pytestmark = pytest.mark.anyio

HTML = {"Accept": "text/html"}

# Page config keys JupyterLab 4 reads (api-contract §8.2).
EXPECTED_KEYS = {
    "appName", "appNamespace", "appUrl", "appVersion", "baseUrl", "wsUrl", "token", "mode",
    "workspace", "treePath", "treeUrl", "fullAppUrl", "fullStaticUrl", "fullLabextensionsUrl",
    "fullSettingsUrl", "fullWorkspacesApiUrl", "fullTranslationsApiUrl", "fullThemesUrl",
    "fullListingsUrl", "fullLicensesUrl", "fullTreeUrl", "fullMathjaxUrl", "mathjaxConfig",
    "settingsUrl", "workspacesApiUrl", "translationsApiUrl", "themesUrl", "listingsUrl",
    "licensesUrl", "labextensionsUrl", "federated_extensions", "disabledExtensions",
    "ignorePlugins", "extraLabextensionsPath", "labextensionsPath", "schemasDir", "themesDir",
    "staticDir", "templatesDir", "appSettingsDir", "userSettingsDir", "workspacesDir",
    "serverRoot", "rootUri", "virtualDocumentsUri", "preferredPath", "notebookVersion",
    "terminalsAvailable", "quitButton", "buildAvailable", "buildCheck", "devMode",
    "cacheFiles", "exposeAppInBrowser", "extensionManager", "news", "store_id",
    "allow_hidden_files", "delete_to_trash", "copyAbsolutePath", "notebookStartsKernel",
    "untracked_message_types",
}  # fmt: skip


def page_config(html: str) -> dict[str, Any]:
    """The JSON in the page's ``jupyter-config-data`` script."""
    match = re.search(
        r'<script id="jupyter-config-data" type="application/json">(.*?)</script>', html, re.S
    )
    assert match, "the page has no jupyter-config-data"
    config: dict[str, Any] = json.loads(match.group(1))
    return config


async def test_lab_page_carries_the_full_page_config(serve: Serve, root_dir: Path) -> None:
    async with serve() as client:
        response = await client.get("/lab", headers=HTML)
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/html")
    config = page_config(response.text)
    assert set(config) >= EXPECTED_KEYS
    assert (
        config["appVersion"]
        == json.loads((Path(config["staticDir"]) / "package.json").read_text())["jupyterlab"][
            "version"
        ]
    )
    assert config["baseUrl"] == "/"
    assert config["fullStaticUrl"] == "/static/lab"
    assert config["fullSettingsUrl"] == "/lab/api/settings"
    assert config["notebookVersion"] == "[2, 21, 1]"
    assert json.loads(config["notebookVersion"]) < [4, 0, 0]  # keeps chunked upload on
    assert config["terminalsAvailable"] is False
    assert config["mode"] == "multiple-document"
    assert config["workspace"] == "default"
    assert config["serverRoot"] == root_dir.as_posix()
    assert config["rootUri"] == root_dir.as_uri()
    assert config["token"] == ""
    assert TEST_TOKEN not in response.text


async def test_lab_page_lists_prebuilt_extensions_and_their_disabled_plugins(
    serve: Serve,
) -> None:
    async with serve() as client:
        config = page_config((await client.get("/lab", headers=HTML)).text)
    by_name = {ext["name"]: ext for ext in config["federated_extensions"]}
    assert by_name["@acme/hello"] == {
        "name": "@acme/hello",
        "load": EXTENSION_ENTRY,
        "extension": "./extension",
        "style": "./style",
        "entrypoints": None,
    }
    assert "plain-ext" in by_name
    assert "@jupyterlab/foo-extension:bar" in config["disabledExtensions"]


async def test_page_shell_links_favicons_and_main_bundle(serve: Serve) -> None:
    async with serve() as client:
        response = await client.get("/lab", headers=HTML)
        main = re.search(r'src="(/static/lab/main\.[0-9a-f]+\.js\?v=[0-9a-f]+)"', response.text)
        assert main, "the shell does not load main.<hash>.js"
        assert 'href="/static/favicons/favicon.ico"' in response.text
        assert 'href="/static/favicons/favicon-busy-1.ico"' in response.text
        bundle = await client.get(main.group(1))
    assert bundle.status_code == 200
    assert bundle.headers["content-type"] == "application/javascript"
    assert bundle.headers["cache-control"] == "public, max-age=31536000, immutable"


async def test_pages_under_a_base_url_use_it_everywhere(serve: Serve) -> None:
    async with serve(base_url="/user/ana/") as client:
        response = await client.get("/user/ana/lab", headers=HTML)
        config = page_config(response.text)
        assert config["baseUrl"] == "/user/ana/"
        assert config["fullStaticUrl"] == "/user/ana/static/lab"
        assert config["fullLabextensionsUrl"] == "/user/ana/lab/extensions"
        assert config["appUrl"] == "/lab"
        assert 'href="/user/ana/static/favicons/favicon.ico"' in response.text
        assert (await client.get("/user/ana/static/favicons/favicon.ico")).status_code == 200
        assert (await client.get("/lab", headers=HTML)).status_code == 404


@pytest.mark.parametrize(
    ("url", "mode", "workspace", "tree"),
    [
        ("/lab/tree/notes/a%20b.ipynb", "multiple-document", "default", "notes/a b.ipynb"),
        ("/lab/tree/", "multiple-document", "default", ""),
        ("/lab/workspaces/team-1", "multiple-document", "team-1", ""),
        ("/lab/workspaces/w_2/tree/x/y.py", "multiple-document", "w_2", "x/y.py"),
        ("/doc", "single-document", "default", ""),
        ("/doc/tree/k.ipynb", "single-document", "default", "k.ipynb"),
        ("/doc/workspaces/solo/tree/k.ipynb", "single-document", "solo", "k.ipynb"),
    ],
)
async def test_page_urls_set_mode_workspace_and_tree_path(
    serve: Serve, url: str, mode: str, workspace: str, tree: str
) -> None:
    async with serve() as client:
        response = await client.get(url, headers=HTML)
    assert response.status_code == 200
    config = page_config(response.text)
    assert (config["mode"], config["workspace"], config["treePath"]) == (mode, workspace, tree)


async def test_invalid_workspace_name_is_not_found(serve: Serve) -> None:
    async with serve() as client:
        response = await client.get("/lab/workspaces/bad.name", headers=HTML)
    assert response.status_code == 404
    assert response.json()["reason"] == "Not Found"


async def test_trailing_slash_redirects_to_the_page(serve: Serve) -> None:
    async with serve() as client:
        response = await client.get("/lab/?reset", headers=HTML)
    assert response.status_code == 302
    assert response.headers["location"] == "/lab?reset"


async def test_pages_need_a_login_but_static_files_do_not(serve: Serve) -> None:
    async with serve(authenticated=False) as client:
        page = await client.get("/lab/tree/a.ipynb", headers=HTML)
        assert page.status_code == 302
        assert page.headers["location"].startswith("/login?next=")
        assert (await client.get("/static/lab/package.json")).status_code == 200
        assert (await client.get("/static/favicons/favicon-busy-1.ico")).status_code == 200
        assert (await client.get("/favicon.ico")).status_code == 200
        ext = await client.get(f"/lab/extensions/@acme/hello/{EXTENSION_ENTRY}")
        assert ext.status_code == 200


async def test_page_with_token_is_exchanged_for_a_cookie_then_served(serve: Serve) -> None:
    async with serve(authenticated=False) as client:
        response = await client.get(f"/lab?token={TEST_TOKEN}", headers=HTML)
        assert response.status_code == 302
        assert response.headers["location"] == "/lab"
        assert "_xsrf" in client.cookies
        page = await client.get("/lab", headers=HTML)
    assert page.status_code == 200
    assert page_config(page.text)["token"] == ""


async def test_unhashed_files_revalidate_with_etag(serve: Serve) -> None:
    async with serve() as client:
        first = await client.get("/static/lab/package.json")
        assert first.status_code == 200
        assert first.headers["cache-control"] == "no-cache"
        assert first.headers["content-type"] == "application/json"
        again = await client.get(
            "/static/lab/package.json", headers={"If-None-Match": first.headers["etag"]}
        )
        head = await client.head("/static/lab/package.json")
    assert again.status_code == 304
    assert again.content == b""
    assert head.status_code == 200
    assert head.headers["content-length"] == first.headers["content-length"]


async def test_extension_files_are_served_by_package_name(serve: Serve) -> None:
    async with serve() as client:
        entry = await client.get(f"/lab/extensions/@acme/hello/{EXTENSION_ENTRY}")
        style = await client.get("/lab/extensions/plain-ext/static/style.js")
        package = await client.get("/lab/extensions/plain-ext/package.json")
        missing = await client.get("/lab/extensions/nobody/static/style.js")
    assert entry.text == "/* remote entry */"
    assert entry.headers["cache-control"] == "public, max-age=31536000, immutable"
    assert style.headers["cache-control"] == "no-cache"
    assert package.json()["name"] == "plain-ext"
    assert missing.status_code == 404


@pytest.mark.parametrize(
    "path",
    [
        "/static/lab/%2e%2e/%2e%2e/package.json",
        "/static/lab/..%2f..%2fschemas",
        "/static/lab/.hidden",
        "/lab/extensions/@acme/hello/..%2f..%2fplain-ext/package.json",
        "/static/favicons/..%2f__init__.py",
        "/lab/extensions/%2e%2e/labextensions/plain-ext/package.json",
        "/lab/extensions/..%2f..%2fjupyter-config",
        "/lab/extensions/@acme/%2e%2e/@acme/hello/package.json",
        "/lab/extensions/@acme%2f..%2f..%2fhello/package.json",
        "/lab/extensions/plain-ext/static/%2e%2e/package.json",
        "/lab/extensions/plain-ext/%2fetc%2fpasswd",
        "/lab/extensions/plain-ext/static%5c..%5cpackage.json",
        "/lab/extensions/plain-ext/package.json%00.js",
        "/lab/extensions/plain-ext/.install.json",
        "/lab/extensions/plain-ext",
        "/lab/extensions/plain-ext/",
        "/static/lab/%2fetc%2fpasswd",
        "/static/lab/index.html%00",
    ],
)
async def test_paths_cannot_leave_their_directory(serve: Serve, path: str) -> None:
    async with serve() as client:
        response = await client.get(path)
    assert response.status_code == 404


async def test_page_config_layers_files_settings_and_plugins(
    serve: Serve, jupyter_config_dir: Path
) -> None:
    labconfig = jupyter_config_dir / "labconfig"
    (labconfig / "page_config.d").mkdir(parents=True)
    (labconfig / "page_config.d" / "pkg.json").write_text(
        json.dumps({"disabledExtensions": ["@x/dropin"], "exposeAppInBrowser": True})
    )
    (labconfig / "page_config.json").write_text(
        json.dumps({"disabledExtensions": {"@x/user": True, "@x/dropin": False}})
    )

    @asynccontextmanager
    async def lifespan(ctx: PluginContext[Any]) -> AsyncIterator[None]:
        async def terminals() -> dict[str, Any]:
            return {"terminalsAvailable": True, "disabledExtensions": ["@x/plugin"]}

        ctx.get(FRONTEND).add_page_config(terminals)
        yield

    contributor = Plugin(
        name="contributor", description="adds page config", requires=[FRONTEND], lifespan=lifespan
    )
    frontend = {"disabled_extensions": ["@x/setting"], "page_config": {"quitButton": False}}
    async with serve(plugins=[contributor], frontend=frontend) as client:
        config = page_config((await client.get("/lab", headers=HTML)).text)
    disabled = set(config["disabledExtensions"])
    assert {"@x/user", "@x/plugin", "@x/setting"} <= disabled
    assert "@x/dropin" not in disabled  # the user's file re-enabled it
    assert config["exposeAppInBrowser"] is True
    assert config["terminalsAvailable"] is True
    assert config["quitButton"] is False


async def test_store_id_counts_page_loads(serve: Serve) -> None:
    async with serve() as client:
        first = page_config((await client.get("/lab", headers=HTML)).text)["store_id"]
        second = page_config((await client.get("/lab", headers=HTML)).text)["store_id"]
    assert second == first + 1


async def test_missing_jupyterlab_fails_startup_naming_the_fix(
    serve: Serve, tmp_path: Path
) -> None:
    # The lifespans run in task groups, which wrap the error in ExceptionGroups.
    with pytest.RaisesGroup(
        pytest.RaisesExc(ConfigError, match=r"frontend\.app_dir"), flatten_subgroups=True
    ):
        async with serve(frontend={"app_dir": str(tmp_path / "nowhere")}):
            pass


async def test_root_redirects_to_the_lab(serve: Serve) -> None:
    async with serve() as client:
        response = await client.get("/?reset", headers=HTML)
    assert response.status_code == 302
    assert response.headers["location"] == "/lab?reset"


async def test_extensions_needing_a_jupyter_server_extension_are_not_loaded(
    serve: Serve,
) -> None:
    async with serve() as client:
        config = page_config((await client.get("/lab", headers=HTML)).text)
    assert "@pyviz/jupyterlab_pyviz" in config["disabledExtensions"]
    assert "@voila-dashboards/jupyterlab-preview" in config["disabledExtensions"]
    async with serve(frontend={"unserved_extensions": []}) as client:
        config = page_config((await client.get("/lab", headers=HTML)).text)
    assert "@pyviz/jupyterlab_pyviz" not in config["disabledExtensions"]


async def test_the_collaboration_ui_is_off_unless_a_plugin_turns_rtc_on(serve: Serve) -> None:
    """Without the collaboration plugin, jupyter-collaboration's UI would retry its refused
    awareness WebSocket forever; with RTC on, it stays."""
    async with serve() as client:
        config = page_config((await client.get("/lab", headers=HTML)).text)
    assert config["disableRTC"] is True
    assert "@jupyter/collaboration-extension" in config["disabledExtensions"]

    @asynccontextmanager
    async def lifespan(ctx: PluginContext[Any]) -> AsyncIterator[None]:
        async def rtc() -> dict[str, Any]:
            return {"disableRTC": False}

        ctx.get(FRONTEND).add_page_config(rtc)
        yield

    collaboration = Plugin(
        name="rtc", description="turns RTC on", requires=[FRONTEND], lifespan=lifespan
    )
    async with serve(plugins=[collaboration]) as client:
        config = page_config((await client.get("/lab", headers=HTML)).text)
    assert config["disableRTC"] is False
    assert "@jupyter/collaboration-extension" not in config["disabledExtensions"]
