"""The smaller lab APIs: themes, licenses, extensions, plugins, build, news, listings, LSP."""

from __future__ import annotations

import csv
import io
import json
import re
from pathlib import Path
from typing import Any

import anyio
import pytest

from junction.plugins.lab.licenses import bundle_matches

from .conftest import Serve

pytestmark = pytest.mark.anyio

HTML = {"Accept": "text/html"}


def page_config(html: str) -> dict[str, Any]:
    """The page config embedded in a lab page."""
    match = re.search(r'id="jupyter-config-data" type="application/json">(.*?)</script>', html)
    assert match
    config: dict[str, Any] = json.loads(match.group(1))
    return config


async def test_core_and_extension_themes_are_public(serve: Serve) -> None:
    async with serve(authenticated=False) as client:
        light = await client.get("/lab/api/themes/@jupyterlab/theme-light-extension/index.css")
        acme = await client.get("/lab/api/themes/@acme/hello/index.css")
        missing = await client.get("/lab/api/themes/@acme/hello/nope.css")
    assert light.status_code == 200
    assert light.headers["content-type"].startswith("text/css")
    assert "--jp-" in light.text
    assert acme.text == ":root { --acme: 1; }"
    assert missing.status_code == 404


@pytest.mark.parametrize(
    "path",
    [
        "@acme/hello/..%2F..%2F..%2Fpackage.json",  # out of the extension's themes/
        "@acme/hello/..%2F..%2F..%2F..%2F..%2Fjupyter-config%2Fx",  # out of the extension
        "..%2Fstatic%2Fpackage.json",  # out of the core themes dir
        "@jupyterlab/theme-light-extension/.hidden",
        "@acme/..%2F@acme/hello/index.css",
        "@acme/hello/index.css%00.png",
        "@acme/hello/a%5C..%5Cindex.css",
    ],
)
async def test_theme_paths_cannot_leave_the_themes_dirs(serve: Serve, path: str) -> None:
    async with serve() as client:  # logged in, so the answer is the route's own
        response = await client.get(f"/lab/api/themes/{path}")
    assert response.status_code == 404


async def test_lab_page_config_names_the_lab_directories(serve: Serve, tmp_path: Any) -> None:
    async with serve() as client:
        config = page_config((await client.get("/lab", headers=HTML)).text)
    assert config["userSettingsDir"] == (tmp_path / "lab-data" / "user-settings").as_posix()
    assert config["workspacesDir"] == (tmp_path / "lab-data" / "workspaces").as_posix()


async def test_licenses_as_json_csv_and_markdown(serve: Serve) -> None:
    async with serve() as client:
        full = (await client.get("/lab/api/licenses/")).json()["bundles"]
        short = await client.get("/lab/api/licenses?full_text=false&bundles=@acme.*")
        table = await client.get("/lab/api/licenses/?format=csv&bundles=@acme")
        markdown = await client.get("/lab/api/licenses/?format=markdown&download=1&bundles=@acme")
        bad_format = await client.get("/lab/api/licenses/?format=pdf")
    assert "@jupyterlab/application-top" in full
    assert len(full["@jupyterlab/application-top"]["packages"]) > 50
    assert full["@acme/hello"]["packages"][0]["extractedText"] == "do what you want"
    assert list(short.json()["bundles"]) == ["@acme/hello"]
    assert "extractedText" not in short.json()["bundles"]["@acme/hello"]["packages"][0]
    rows = list(csv.DictReader(io.StringIO(table.text)))
    assert table.headers["content-type"].startswith("text/csv")
    assert rows == [
        {"bundle": "@acme/hello", "name": "left-pad", "versionInfo": "1.3.0",
         "licenseId": "WTFPL", "extractedText": "do what you want"}
    ]  # fmt: skip
    assert "# @acme/hello" in markdown.text
    assert "attachment" in markdown.headers["content-disposition"]
    assert markdown.headers["content-disposition"].endswith('licenses.md"')
    assert bad_format.status_code == 400


@pytest.mark.parametrize(
    ("patterns", "selected"),
    [
        ("", True),
        ("*", True),
        (".*", True),  # Jupyter's default regular expression keeps selecting everything
        ("@acme", True),
        ("@acme/hello", True),
        ("@acme/*o", True),
        ("@acme/.*", True),
        ("*hello", True),
        ("nope,@acme", True),
        ("@acme.hello", False),  # '.' is literal, not "any character"
        ("hello", False),  # patterns match the start of the name
        ("@acme/hello-world", False),
        ("(.+)+!", False),
        ("[@]acme", False),
    ],
)
def test_bundle_patterns_are_prefixes_with_stars(patterns: str, selected: bool) -> None:
    assert bundle_matches("@acme/hello", patterns) is selected


async def test_license_patterns_are_not_regular_expressions(serve: Serve) -> None:
    """A backtracking pattern once held the GIL for minutes; patterns are plain text now."""
    async with serve() as client:
        unbalanced = await client.get("/lab/api/licenses/?bundles=(")
        assert unbalanced.status_code == 200
        assert unbalanced.json() == {"bundles": {}}
        with anyio.fail_after(10):
            evil = await client.get("/lab/api/licenses?bundles=(.%2B)%2B!")
    assert evil.status_code == 200
    assert evil.json() == {"bundles": {}}


async def test_extensions_are_listed_read_only(serve: Serve) -> None:
    async with serve() as client:
        listing = (await client.get("/lab/api/extensions")).json()
        install = await client.post(
            "/lab/api/extensions", json={"cmd": "install", "extension_name": "x"}
        )
    hello = next(ext for ext in listing if ext["name"] == "@acme/hello")
    assert hello["installed_version"] == "0.4.0"
    assert hello["enabled"] is True
    assert hello["pkg_type"] == "prebuilt"
    assert install.status_code == 400
    assert "pip" in install.json()["message"]


async def test_disabling_a_plugin_reaches_the_page_config_and_persists(serve: Serve) -> None:
    plugin = "@jupyterlab/apputils-extension:announcements"
    async with serve() as client:
        locks = (await client.get("/lab/api/plugins")).json()
        response = await client.post(
            "/lab/api/plugins", json={"cmd": "disable", "plugin_name": plugin}
        )
        disabled_ext = await client.post(
            "/lab/api/extensions", json={"cmd": "disable", "extension_name": "@acme/hello"}
        )
        listing = (await client.get("/lab/api/extensions")).json()
    assert locks == {"lockRules": [], "allLocked": False}
    assert response.status_code == 201
    assert response.json() == {"status": "ok", "message": None, "needs_restart": ["frontend"]}
    assert disabled_ext.status_code == 201
    assert next(e for e in listing if e["name"] == "@acme/hello")["enabled"] is False
    async with serve() as client:
        config = page_config((await client.get("/lab", headers=HTML)).text)
        await client.post("/lab/api/plugins", json={"cmd": "enable", "plugin_name": plugin})
        again = page_config((await client.get("/lab", headers=HTML)).text)
    assert {plugin, "@acme/hello"} <= set(config["disabledExtensions"])
    assert plugin not in again["disabledExtensions"]


async def test_locked_plugins_cannot_be_switched(serve: Serve) -> None:
    lab = {"locked_plugins": ["@jupyterlab/apputils-extension"]}
    async with serve(lab=lab) as client:
        locks = (await client.get("/lab/api/plugins")).json()
        refused = await client.post(
            "/lab/api/plugins",
            json={"cmd": "disable", "plugin_name": "@jupyterlab/apputils-extension:themes"},
        )
        invalid = await client.post("/lab/api/plugins", json={"cmd": "explode"})
    assert locks["lockRules"] == ["@jupyterlab/apputils-extension"]
    assert refused.status_code == 403
    assert invalid.status_code == 400


TRACKER = "@jupyterlab/notebook-extension:tracker"
NOTEBOOK_EXT = "@jupyterlab/notebook-extension"
OTHER = "@jupyterlab/apputils-extension:announcements"


async def test_locked_plugins_cannot_be_disabled_through_the_config_section(
    serve: Serve,
) -> None:
    """``/api/config/page_config`` holds the UI's switches: it obeys the locks too."""
    async with serve(lab={"locked_plugins": [TRACKER]}) as client:
        patched = await client.patch(
            "/api/config/page_config", json={"disabledExtensions": {TRACKER: True}}
        )
        put = await client.put("/api/config/page_config", json={"disabledExtensions": [TRACKER]})
        whole_package = await client.patch(
            "/api/config/page_config", json={"disabledExtensions": {NOTEBOOK_EXT: True}}
        )
        package_switch = await client.post(
            "/lab/api/plugins", json={"cmd": "disable", "plugin_name": NOTEBOOK_EXT}
        )
        unlocked = await client.patch(
            "/api/config/page_config", json={"disabledExtensions": {OTHER: True}}
        )
        other_section = await client.put("/api/config/notebook", json={TRACKER: True})
        section = (await client.get("/api/config/page_config")).json()
        config = page_config((await client.get("/lab", headers=HTML)).text)
    for refused in (patched, put, whole_package, package_switch):
        assert refused.status_code == 403
        assert "locked by the administrator" in refused.json()["message"]
    assert unlocked.status_code == 200
    assert other_section.status_code == 204
    assert section == {"disabledExtensions": {OTHER: True}}
    assert OTHER in config["disabledExtensions"]
    assert TRACKER not in config["disabledExtensions"]
    assert NOTEBOOK_EXT not in config["disabledExtensions"]


async def test_stored_choices_about_locked_plugins_never_reach_the_page(
    serve: Serve, tmp_path: Path, jupyter_config_dir: Path
) -> None:
    """Choices saved before the lock (or by hand) cannot disable or re-enable locked names."""
    labconfig = jupyter_config_dir / "labconfig"
    labconfig.mkdir()
    (labconfig / "page_config.json").write_text(
        json.dumps({"disabledExtensions": {"@x/admin-off:plugin": True}})
    )
    stored = tmp_path / "lab-data" / "config" / "page_config.json"
    stored.parent.mkdir(parents=True)
    choices = {TRACKER: True, NOTEBOOK_EXT: True, "@x/admin-off:plugin": False, OTHER: True}
    stored.write_text(json.dumps({"disabledExtensions": choices}))
    async with serve() as client:
        unlocked = set(
            page_config((await client.get("/lab", headers=HTML)).text)["disabledExtensions"]
        )
    lab = {"locked_plugins": [TRACKER, "@x/admin-off"]}
    async with serve(lab=lab) as client:
        locked = set(
            page_config((await client.get("/lab", headers=HTML)).text)["disabledExtensions"]
        )
        listing = (await client.get("/lab/api/extensions")).json()
    async with serve(lab={"lock_all_plugins": True}) as client:
        all_locked = set(
            page_config((await client.get("/lab", headers=HTML)).text)["disabledExtensions"]
        )
        refused = await client.patch(
            "/api/config/page_config", json={"disabledExtensions": {OTHER: False}}
        )
    assert {TRACKER, NOTEBOOK_EXT, OTHER} <= unlocked
    assert "@x/admin-off:plugin" not in unlocked  # the user's false re-enabled it
    assert TRACKER not in locked
    assert NOTEBOOK_EXT not in locked  # the package holds a locked plugin
    assert "@x/admin-off:plugin" in locked  # the admin's state stands
    assert OTHER in locked
    # Panel's and Voila's previews stay off: their server halves are jupyter_server extensions;
    # so does jupyter-collaboration's UI without the collaboration plugin.
    unserved = {
        "@pyviz/jupyterlab_pyviz",
        "@voila-dashboards/jupyterlab-preview",
        "@jupyter/collaboration-extension",
    }
    assert all(ext["enabled"] for ext in listing if ext["name"] not in unserved)
    assert all_locked & {TRACKER, NOTEBOOK_EXT, OTHER} == set()
    assert "@x/admin-off:plugin" in all_locked
    assert refused.status_code == 403


async def test_fixed_answers(serve: Serve) -> None:
    async with serve() as client:
        build = (await client.get("/lab/api/build")).json()
        news = (await client.get("/lab/api/news")).json()
        update = (await client.get("/lab/api/update")).json()
        listings = await client.get(
            "/lab/api/listings/@jupyterlab/extensionmanager-extension/listings.json"
        )
        lsp = (await client.get("/lsp/status")).json()
    assert build == {"status": "stable", "message": ""}
    assert news == {"news": []}
    assert update == {"notification": None}
    assert listings.json()["blocked_extensions_uris"] == []
    assert lsp == {"version": 2, "sessions": {}, "specs": {}}
