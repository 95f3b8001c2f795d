"""``/lab/api/settings``: schemas from the app and extensions, admin defaults, user values
(kept in ``lab_settings`` on SQLite and PostgreSQL, imported once from settings files)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from junction.plugins.lab.service import SettingsNotFound
from junction.plugins.lab.usersettings import settings_path

from .conftest import EXT_PLUGIN, THEMES, Serve, query

pytestmark = pytest.mark.anyio


@pytest.fixture
def lab_database_url(database_url: str) -> str:
    """Every test here runs on SQLite and on PostgreSQL."""
    return database_url


def _default(entry: dict[str, object], key: str) -> object:
    schema = entry["schema"]
    assert isinstance(schema, dict)
    return schema["properties"][key]["default"]


async def test_ids_only_lists_core_and_extension_plugins(serve: Serve) -> None:
    async with serve() as client:
        response = await client.get("/lab/api/settings?ids_only=true")
    assert response.status_code == 200
    ids = [item["id"] for item in response.json()["settings"]]
    assert THEMES in ids
    assert EXT_PLUGIN in ids
    assert "@jupyterlab/notebook-extension:tracker" in ids
    assert all(set(item) == {"id"} for item in response.json()["settings"])


async def test_full_list_carries_schema_version_and_empty_user_values(serve: Serve) -> None:
    async with serve() as client:
        response = await client.get("/lab/api/settings")
    entries = {entry["id"]: entry for entry in response.json()["settings"]}
    hello = entries[EXT_PLUGIN]
    assert hello["version"] == "0.4.0"
    assert hello["raw"] == "{}"
    assert hello["settings"] == {}
    assert hello["last_modified"] is None
    assert entries[THEMES]["schema"]["title"] == "Theme"


async def test_saved_json5_is_kept_verbatim_and_parsed(
    serve: Serve, tmp_path: Path, database_url: str
) -> None:
    raw = '{\n  // my theme\n  "theme": "JupyterLab Dark",\n}'
    async with serve() as client:
        saved = await client.put(f"/lab/api/settings/{THEMES}", json={"raw": raw})
        entry = (await client.get(f"/lab/api/settings/{THEMES}")).json()
    assert saved.status_code == 204
    assert entry["raw"] == raw
    assert entry["settings"] == {"theme": "JupyterLab Dark"}
    assert entry["last_modified"].endswith("Z")
    rows = await query(database_url, "SELECT plugin_id, raw FROM lab_settings")
    assert rows == [(THEMES, raw)]
    assert not (tmp_path / "lab-data" / "user-settings").exists()


async def test_settings_survive_a_restart(serve: Serve) -> None:
    async with serve() as client:
        await client.put(f"/lab/api/settings/{EXT_PLUGIN}", json={"raw": '{"greeting": "yo"}'})
    async with serve() as client:
        entry = (await client.get(f"/lab/api/settings/{EXT_PLUGIN}")).json()
    assert entry["settings"] == {"greeting": "yo"}


async def test_settings_sent_as_text_plain_are_accepted(serve: Serve) -> None:
    """JupyterLab's fetch labels JSON bodies text/plain; they must still be read."""
    body = json.dumps({"raw": '{"greeting": "plain"}'})
    async with serve() as client:
        response = await client.put(
            f"/lab/api/settings/{EXT_PLUGIN}",
            content=body,
            headers={"Content-Type": "text/plain;charset=UTF-8"},
        )
        entry = (await client.get(f"/lab/api/settings/{EXT_PLUGIN}")).json()
    assert response.status_code == 204
    assert entry["settings"] == {"greeting": "plain"}


@pytest.mark.parametrize(
    ("body", "fragment"),
    [
        ({"raw": '{"greeting": 5}'}, "greeting"),
        ({"raw": '{"unknown": true}'}, "Additional properties"),
        ({"raw": "{greeting: "}, "not valid JSON5"),
        ({"raw": "[1, 2]"}, "must be a JSON object"),
        ({"rawr": "{}"}, "raw"),
    ],
)
async def test_invalid_settings_are_refused_and_not_saved(
    serve: Serve, body: dict[str, str], fragment: str
) -> None:
    async with serve() as client:
        response = await client.put(f"/lab/api/settings/{EXT_PLUGIN}", json=body)
        entry = (await client.get(f"/lab/api/settings/{EXT_PLUGIN}")).json()
    assert response.status_code == 400
    assert fragment in response.json()["message"]
    assert entry["raw"] == "{}"


@pytest.mark.parametrize(
    "plugin_id",
    [
        "@acme/nothing:plugin",
        "no-colon",
        "@acme/../x:y",
        "@acme/hello:..",
        "@acme/hello:.hidden",
        "..:plugin",
        "@acme/hello:%2E%2E%2F%2E%2E%2Fx",
        "@acme%2F..%2F..%2F..%2Fx:plugin",
        "%2Fetc%2Fpasswd:plugin",
        "@acme/hello:plugin%00",
        "@acme/hello:plu%5Cgin",
        "@acme/hello/extra:plugin",
    ],
)
async def test_unknown_or_malformed_ids_are_not_found(
    serve: Serve, tmp_path: Path, database_url: str, plugin_id: str
) -> None:
    async with serve() as client:
        got = await client.get(f"/lab/api/settings/{plugin_id}")
        put = await client.put(f"/lab/api/settings/{plugin_id}", json={"raw": "{}"})
    assert got.status_code == 404
    assert put.status_code == 404
    assert not (tmp_path / "lab-data" / "user-settings").exists()
    assert await query(database_url, "SELECT plugin_id FROM lab_settings") == []


@pytest.mark.parametrize(
    "plugin_id",
    [
        "@acme/hello:..",
        "..:x",
        "@acme/..:x",
        "@acme/hello:.x",
        "a/b:c",
        "a:b/c",
        "a:b\\c",
        "a:b\x00",
    ],
)
def test_settings_paths_refuse_ids_that_could_leave_the_directory(
    tmp_path: Path, plugin_id: str
) -> None:
    with pytest.raises(SettingsNotFound):
        settings_path(tmp_path, plugin_id)


def test_settings_paths_stay_under_the_directory(tmp_path: Path) -> None:
    path = settings_path(tmp_path, EXT_PLUGIN)
    assert path == tmp_path / "@acme" / "hello" / "plugin.jupyterlab-settings"


async def test_stored_settings_failing_the_schema_are_ignored_with_a_warning(
    serve: Serve, tmp_path: Path
) -> None:
    stored = tmp_path / "lab-data" / "user-settings" / "@acme" / "hello"
    stored.mkdir(parents=True)
    (stored / "plugin.jupyterlab-settings").write_text('{"greeting": 42}')
    async with serve() as client:
        entry = (await client.get(f"/lab/api/settings/{EXT_PLUGIN}")).json()
    assert entry["settings"] == {}
    assert entry["raw"] == "{}"
    assert "greeting" in entry["warning"] or "42" in entry["warning"]


async def test_admin_defaults_layer_over_schema_defaults(
    serve: Serve, small_app_dir: Path, jupyter_config_dir: Path
) -> None:
    (small_app_dir / "settings" / "overrides.json").write_text(
        json.dumps({THEMES: {"theme": "JupyterLab Dark"}, EXT_PLUGIN: {"greeting": "admin"}})
    )
    dropins = small_app_dir / "settings" / "overrides.d"
    dropins.mkdir()
    (dropins / "10-pkg.json5").write_text("{'@acme/hello:plugin': {colors: {fg: 'red'}}}")
    labconfig = jupyter_config_dir / "labconfig"
    labconfig.mkdir()
    (labconfig / "default_setting_overrides.json").write_text(
        json.dumps({EXT_PLUGIN: {"greeting": "labconfig"}})
    )
    lab = {"default_settings": {THEMES: {"theme-scrollbars": True}}}
    async with serve(frontend={"app_dir": str(small_app_dir)}, lab=lab) as client:
        themes = (await client.get(f"/lab/api/settings/{THEMES}")).json()
        hello = (await client.get(f"/lab/api/settings/{EXT_PLUGIN}")).json()
    assert _default(themes, "theme") == "JupyterLab Dark"
    assert _default(themes, "theme-scrollbars") is True
    assert _default(hello, "greeting") == "labconfig"  # labconfig comes after overrides.json
    assert _default(hello, "colors") == {"fg": "red", "bg": "white"}  # objects merge


async def test_settings_need_a_login(serve: Serve) -> None:
    async with serve(authenticated=False) as client:
        response = await client.get("/lab/api/settings")
    assert response.status_code == 403


async def test_settings_files_are_imported_once_with_their_text(
    serve: Serve, tmp_path: Path, database_url: str
) -> None:
    stored = tmp_path / "lab-data" / "user-settings"
    raw = '{\n  // kept\n  "greeting": "from a file",\n}'
    (stored / "@acme" / "hello").mkdir(parents=True)
    (stored / "@acme" / "hello" / "plugin.jupyterlab-settings").write_text(raw)
    (stored / "@jupyterlab" / "apputils-extension").mkdir(parents=True)
    themes = stored / "@jupyterlab" / "apputils-extension" / "themes.jupyterlab-settings"
    themes.write_text('{"theme": "JupyterLab Dark"}')
    (stored / "stray.jupyterlab-settings").write_text("{}")  # no package: not a plugin id
    async with serve() as client:
        hello = (await client.get(f"/lab/api/settings/{EXT_PLUGIN}")).json()
        await client.put(
            f"/lab/api/settings/{THEMES}", json={"raw": '{"theme": "JupyterLab Light"}'}
        )
    themes.write_text('{"theme": "changed on disk later"}')
    async with serve() as client:
        theme = (await client.get(f"/lab/api/settings/{THEMES}")).json()
    assert hello["raw"] == raw
    assert hello["settings"] == {"greeting": "from a file"}
    assert hello["last_modified"].endswith("Z")
    assert theme["settings"] == {"theme": "JupyterLab Light"}  # the import did not run again
    rows = await query(database_url, "SELECT plugin_id FROM lab_settings ORDER BY plugin_id")
    assert rows == [(EXT_PLUGIN,), (THEMES,)]


async def test_settings_reads_are_served_from_memory(serve: Serve, database_url: str) -> None:
    async with serve() as client:
        await client.put(f"/lab/api/settings/{EXT_PLUGIN}", json={"raw": '{"greeting": "a"}'})
        # Changed behind the server's back: a running server keeps what it wrote.
        await query(database_url, 'UPDATE lab_settings SET raw = \'{"greeting": "b"}\'')
        cached = (await client.get(f"/lab/api/settings/{EXT_PLUGIN}")).json()
    async with serve() as client:
        reloaded = (await client.get(f"/lab/api/settings/{EXT_PLUGIN}")).json()
    assert cached["settings"] == {"greeting": "a"}
    assert reloaded["settings"] == {"greeting": "b"}
