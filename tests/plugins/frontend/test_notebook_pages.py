"""Notebook 7's pages and the files they load, served in-process from the installed package."""

from __future__ import annotations

import re
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from importlib.metadata import version
from pathlib import Path
from typing import Any, cast

import pytest
from pydantic import ValidationError
from starlette.requests import HTTPConnection
from starlette.testclient import TestClient

from junction.app import create_app
from junction.plugin import Plugin, PluginContext
from junction.plugins.frontend.appdir import find_notebook
from junction.plugins.frontend.models import PathKind
from junction.plugins.frontend.service import FRONTEND
from junction.plugins.terminals.service import TERMINALS, TerminalService
from junction.testing import TEST_TOKEN, make_settings

from .conftest import Serve
from .test_routes import HTML, page_config

pytestmark = pytest.mark.anyio

# The keys Notebook 7.6 (on jupyter_server) puts in its tree page's config.
NOTEBOOK_KEYS = {
    "allow_hidden_files", "appName", "appNamespace", "appSettingsDir", "appUrl", "appVersion",
    "baseUrl", "buildAvailable", "buildCheck", "cacheFiles", "copyAbsolutePath",
    "delete_to_trash", "devMode", "disabledExtensions", "exposeAppInBrowser",
    "extensionManager", "extraLabextensionsPath", "federated_extensions", "frontendUrl",
    "fullAppUrl", "fullLabextensionsUrl", "fullLicensesUrl", "fullListingsUrl",
    "fullMathjaxUrl", "fullSettingsUrl", "fullStaticUrl", "fullThemesUrl",
    "fullTranslationsApiUrl", "fullTreeUrl", "fullWorkspacesApiUrl", "jupyterConfigDir",
    "labextensionsPath", "labextensionsUrl", "licensesUrl", "listingsUrl", "mathjaxConfig",
    "nbclassic_enabled", "news", "notebookPage", "notebookStartsKernel", "notebookVersion",
    "preferredPath", "quitButton", "rootUri", "schemasDir", "settingsUrl", "staticDir",
    "templatesDir", "terminalsAvailable", "themesDir", "themesUrl", "token",
    "translationsApiUrl", "treePath", "treeUrl", "untracked_message_types", "userSettingsDir",
    "virtualDocumentsUri", "workspacesApiUrl", "workspacesDir", "wsUrl",
}  # fmt: skip


def inspecting(kinds: dict[str, PathKind]) -> Plugin:
    """A plugin that tells the frontend what lies at each path (``missing`` if unlisted)."""

    @asynccontextmanager
    async def lifespan(ctx: PluginContext[Any]) -> AsyncIterator[None]:
        async def inspect(conn: HTTPConnection, path: str) -> PathKind:
            return kinds.get(path, "missing")

        ctx.get(FRONTEND).set_path_inspector(inspect)
        yield

    return Plugin(name="files", description="knows files", requires=[FRONTEND], lifespan=lifespan)


async def test_tree_page_carries_notebook_7s_page_config(
    serve: Serve, root_dir: Path, jupyter_config_dir: Path
) -> None:
    async with serve() as client:
        response = await client.get("/tree", headers=HTML)
    assert response.status_code == 200
    assert response.headers["cache-control"] == "no-cache"
    config = page_config(response.text)
    assert set(config) >= NOTEBOOK_KEYS
    assert not {"mode", "workspace", "store_id"} & set(config)
    assert config["appName"] == "Jupyter Notebook"
    assert config["appNamespace"] == "notebook"
    assert config["appVersion"] == version("notebook")
    assert config["notebookPage"] == "tree"
    assert config["treePath"] == ""
    assert config["baseUrl"] == "/"
    assert config["frontendUrl"] == "/"
    assert config["wsUrl"] == ""
    assert config["fullStaticUrl"] == "/static/notebook"
    assert Path(config["staticDir"], "third-party-licenses.json").is_file()
    assert Path(config["templatesDir"], "tree.html").is_file()
    assert config["jupyterConfigDir"] == jupyter_config_dir.as_posix()
    assert config["nbclassic_enabled"] is False
    assert config["terminalsAvailable"] is False
    assert config["token"] == ""
    assert TEST_TOKEN not in response.text
    assert config["serverRoot"] == root_dir.as_posix()


async def test_notebook_7_shares_jupyterlabs_apis_and_extensions(serve: Serve) -> None:
    async with serve() as client:
        notebook = page_config((await client.get("/tree", headers=HTML)).text)
        lab = page_config((await client.get("/lab", headers=HTML)).text)
    shared = [
        "appUrl", "fullSettingsUrl", "fullWorkspacesApiUrl", "fullTranslationsApiUrl",
        "fullThemesUrl", "fullListingsUrl", "fullLicensesUrl", "fullLabextensionsUrl",
        "settingsUrl", "workspacesApiUrl", "schemasDir", "themesDir", "appSettingsDir",
        "userSettingsDir", "workspacesDir", "labextensionsPath", "federated_extensions",
        "disabledExtensions", "notebookVersion",
    ]  # fmt: skip
    assert {key: notebook[key] for key in shared} == {key: lab[key] for key in shared}
    assert notebook["fullSettingsUrl"] == "/lab/api/settings"
    assert notebook["fullWorkspacesApiUrl"] == "/lab/api/workspaces"
    assert notebook["fullLabextensionsUrl"] == "/lab/extensions"
    names = {extension["name"] for extension in notebook["federated_extensions"]}
    assert "@jupyter-notebook/lab-extension" in names


@pytest.mark.parametrize(
    ("url", "page", "title"),
    [
        ("/tree/", "tree", "Home"),
        ("/notebooks/work/a%20b.ipynb", "notebooks", "Jupyter Notebook - Notebook"),
        ("/edit/notes.txt", "edit", "Jupyter Notebook - Edit"),
        ("/edit", "edit", "Jupyter Notebook - Edit"),
        ("/consoles/work/a.ipynb", "consoles", "Jupyter Notebook - Console"),
        ("/terminals/1", "terminals", "Jupyter Notebook - Terminal"),
    ],
)
async def test_each_page_renders_its_template(
    serve: Serve, url: str, page: str, title: str
) -> None:
    async with serve() as client:
        response = await client.get(url, headers=HTML)
    assert response.status_code == 200
    assert f"<title>{title}</title>" in response.text
    config = page_config(response.text)
    assert config["notebookPage"] == page
    assert ("treePath" in config) == (page == "tree")


async def test_every_file_a_page_links_is_served(serve: Serve) -> None:
    async with serve() as client:
        for url in ("/tree", "/notebooks/a.ipynb", "/edit/a.txt", "/consoles/c", "/terminals/1"):
            html = (await client.get(url, headers=HTML)).text
            links = re.findall(r'(?:src|href)="([^"]+)"', html)
            assert any(link.startswith("/static/notebook/main.") for link in links)
            for link in links:
                response = await client.get(link)
                assert response.status_code == 200, f"{url} links {link}: {response.status_code}"


async def test_main_bundle_is_cached_forever_and_typed(serve: Serve) -> None:
    async with serve() as client:
        html = (await client.get("/tree", headers=HTML)).text
        main = re.search(r'src="(/static/notebook/main\.[0-9a-f]+\.js\?v=[0-9a-f]+)"', html)
        assert main, "the page does not load Notebook 7's main bundle"
        bundle = await client.get(main.group(1))
        licenses = await client.get("/static/notebook/third-party-licenses.json")
    assert bundle.headers["content-type"] == "application/javascript"
    assert bundle.headers["cache-control"] == "public, max-age=31536000, immutable"
    assert licenses.headers["cache-control"] == "no-cache"
    assert "packages" in licenses.json()


async def test_user_custom_css_wins_over_the_placeholder(
    serve: Serve, jupyter_config_dir: Path
) -> None:
    async with serve() as client:
        placeholder = await client.get("/custom/custom.css")
        (jupyter_config_dir / "custom").mkdir()
        (jupyter_config_dir / "custom" / "custom.css").write_text("body { color: teal; }")
        custom = await client.get("/custom/custom.css")
    assert placeholder.status_code == 200
    assert placeholder.headers["content-type"].startswith("text/css")
    assert "Placeholder" in placeholder.text
    assert custom.text == "body { color: teal; }"


async def test_pages_need_a_login_but_the_bundle_does_not(serve: Serve) -> None:
    async with serve(authenticated=False) as client:
        for url in ("/tree", "/notebooks/a.ipynb", "/edit/a", "/custom/custom.css"):
            page = await client.get(url, headers=HTML)
            assert page.status_code == 302, url
            assert page.headers["location"].startswith("/login?next=")
        assert (await client.get("/static/notebook/third-party-licenses.json")).status_code == 200
        assert (await client.get("/static/favicons/favicon-notebook.ico")).status_code == 200
        entered = await client.get(f"/tree?token={TEST_TOKEN}", headers=HTML)
        assert entered.status_code == 302
        assert entered.headers["location"] == "/tree"
        assert (await client.get("/tree", headers=HTML)).status_code == 200


async def test_pages_under_a_base_url_use_it_everywhere(serve: Serve) -> None:
    async with serve(base_url="/user/ana/", plugins=[inspecting({"": "directory"})]) as client:
        response = await client.get("/user/ana/tree", headers=HTML)
        config = page_config(response.text)
        assert config["baseUrl"] == "/user/ana/"
        assert config["frontendUrl"] == "/user/ana/"
        assert config["fullStaticUrl"] == "/user/ana/static/notebook"
        assert config["fullSettingsUrl"] == "/user/ana/lab/api/settings"
        assert 'href="/user/ana/custom/custom.css"' in response.text
        assert 'src="/user/ana/static/notebook/main.' in response.text
        assert (await client.get("/user/ana/notebooks")).headers["location"] == "/user/ana/tree"
        assert (await client.get("/tree", headers=HTML)).status_code == 404


@pytest.mark.parametrize(
    ("url", "status", "location", "tree_path"),
    [
        ("/tree", 200, None, ""),
        ("/tree/work/sub/", 200, None, "work/sub"),
        ("/tree/work/a%20b.ipynb", 302, "/notebooks/work/a%20b.ipynb", None),
        ("/tree/work/data.csv", 302, "/files/work/data.csv", None),
        ("/tree/nowhere", 404, None, None),
        ("/notebooks/work/sub", 302, "/tree/work/sub", None),
        ("/notebooks/", 302, "/tree", None),
        ("/notebooks", 302, "/tree", None),
        ("/notebooks/work/a%20b.ipynb", 200, None, None),
        ("/notebooks/work/not-yet.ipynb", 200, None, None),
    ],
)
async def test_tree_and_notebook_pages_follow_what_lies_at_the_path(
    serve: Serve, url: str, status: int, location: str | None, tree_path: str | None
) -> None:
    kinds: dict[str, PathKind] = {
        "": "directory",
        "work/sub": "directory",
        "work/a b.ipynb": "notebook",
        "work/data.csv": "file",
    }
    async with serve(plugins=[inspecting(kinds)]) as client:
        response = await client.get(url, headers=HTML)
    assert response.status_code == status
    assert response.headers.get("location") == location
    if status == 404:
        assert response.json()["message"] == "no such directory: nowhere"
    if tree_path is not None:
        assert page_config(response.text)["treePath"] == tree_path


async def test_tree_opens_any_path_when_no_plugin_knows_the_files(serve: Serve) -> None:
    async with serve() as client:
        response = await client.get("/tree/work/a.ipynb", headers=HTML)
    assert response.status_code == 200
    assert page_config(response.text)["treePath"] == "work/a.ipynb"


async def test_tree_follows_the_real_files_with_contents_and_lab(
    serve: Serve, root_dir: Path
) -> None:
    (root_dir / "work").mkdir()
    (root_dir / "work" / "n.ipynb").write_text('{"cells": [], "metadata": {}, "nbformat": 4}')
    (root_dir / "work" / "a.txt").write_text("text")
    (root_dir / ".secret").mkdir()
    async with serve(enable=("contents", "frontend", "lab")) as client:
        folder = await client.get("/tree/work", headers=HTML)
        notebook = await client.get("/tree/work/n.ipynb", headers=HTML)
        text = await client.get("/tree/work/a.txt", headers=HTML)
        hidden = await client.get("/tree/.secret", headers=HTML)
        missing = await client.get("/tree/nope", headers=HTML)
        back = await client.get("/notebooks/work", headers=HTML)
    assert folder.status_code == 200
    assert page_config(folder.text)["treePath"] == "work"
    assert notebook.headers["location"] == "/notebooks/work/n.ipynb"
    assert text.headers["location"] == "/files/work/a.txt"
    assert hidden.status_code == 404
    assert missing.status_code == 404
    assert back.headers["location"] == "/tree/work"


async def test_terminals_available_follows_the_terminals_service(serve: Serve) -> None:
    @asynccontextmanager
    async def lifespan(ctx: PluginContext[Any]) -> AsyncIterator[None]:
        # Only the service's presence matters; the pages never call it.
        ctx.provide(TERMINALS, cast(TerminalService, object()))
        yield

    terminals = Plugin(
        name="fake-terminals", description="terminals", provides=[TERMINALS], lifespan=lifespan
    )
    async with serve() as client:
        without = page_config((await client.get("/tree", headers=HTML)).text)
    async with serve(plugins=[terminals]) as client:
        notebook = page_config((await client.get("/tree", headers=HTML)).text)
        lab = page_config((await client.get("/lab", headers=HTML)).text)
    assert without["terminalsAvailable"] is False
    assert notebook["terminalsAvailable"] is True
    assert lab["terminalsAvailable"] is True


async def test_terminal_page_takes_one_segment_only(serve: Serve) -> None:
    async with serve() as client:
        page = await client.get("/terminals/1", headers=HTML)
        socket_path = await client.get("/terminals/websocket/1", headers=HTML)
    assert page.status_code == 200
    assert socket_path.status_code == 404


async def test_without_notebook_installed_pages_say_how_to_install_it(
    serve: Serve, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(sys.modules, "notebook", None)  # how Python marks a missing module
    async with serve() as client:
        responses = [
            await client.get(url, headers=HTML)
            for url in (
                "/tree",
                "/tree/x",
                "/notebooks/a.ipynb",
                "/notebooks",
                "/edit/a.txt",
                "/consoles/c",
                "/terminals/1",
                "/custom/custom.css",
                "/static/notebook/third-party-licenses.json",
                "/static/notebook/favicons/favicon-console.ico",
            )
        ]
        lab = await client.get("/lab", headers=HTML)
    for response in responses:
        assert response.status_code == 404
        assert "pip install 'notebook>=7.2,<8'" in response.json()["message"]
    assert lab.status_code == 200


@pytest.mark.parametrize(
    "path",
    [
        "/static/notebook/%2e%2e/app.py",
        "/static/notebook/..%2f__init__.py",
        "/static/notebook/.hidden",
        "/static/notebook/%2fetc%2fpasswd",
        "/static/notebook/favicons/..%2f..%2fapp.py",
    ],
)
async def test_notebook_files_cannot_leave_their_directory(serve: Serve, path: str) -> None:
    async with serve() as client:
        response = await client.get(path)
    assert response.status_code == 404


async def test_default_url_sends_the_root_to_notebook_7(serve: Serve) -> None:
    async with serve(default_url="/tree") as client:
        response = await client.get("/?reset", headers=HTML)
    assert response.status_code == 302
    assert response.headers["location"] == "/tree?reset"
    async with serve(default_url="/tree", base_url="/user/ana/") as client:
        response = await client.get("/user/ana/", headers=HTML)
    assert response.headers["location"] == "/user/ana/tree"


def test_the_terminals_websocket_wins_over_the_terminal_page(root_dir: Path) -> None:
    app = create_app(make_settings(enable=["frontend", "terminals"], root_dir=root_dir))
    headers = {"Authorization": f"token {TEST_TOKEN}"}
    with TestClient(app, base_url="http://localhost:8888", headers=headers) as client:
        name = client.post("/api/terminals", json={}).json()["name"]
        page = client.get(f"/terminals/{name}", headers=HTML)
        socket_url = f"/terminals/websocket/{name}"
        with client.websocket_connect(socket_url, headers={"Host": "localhost:8888"}) as socket:
            first = socket.receive_json()
        client.delete(f"/api/terminals/{name}")
    assert page.status_code == 200
    assert page_config(page.text)["notebookPage"] == "terminals"
    assert page_config(page.text)["terminalsAvailable"] is True
    assert first == ["setup", {}]


@pytest.mark.parametrize("value", ["tree", "//evil.example/tree", "https://evil.example/"])
def test_default_url_must_be_a_path(value: str) -> None:
    with pytest.raises(ValidationError, match="default_url must be a path"):
        make_settings(default_url=value)


def test_the_classic_notebook_is_not_taken_for_notebook_7(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    package = tmp_path / "site" / "notebook"
    (package / "templates").mkdir(parents=True)
    (package / "__init__.py").write_text("")
    (package / "templates" / "tree.html").write_text("classic")
    dist = tmp_path / "site" / "notebook-6.5.7.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: notebook\nVersion: 6.5.7\n")
    assert find_notebook() is not None  # the installed Notebook 7
    monkeypatch.delitem(sys.modules, "notebook", raising=False)
    monkeypatch.syspath_prepend(str(tmp_path / "site"))
    assert find_notebook() is None
