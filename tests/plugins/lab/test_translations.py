"""``/lab/api/translations``: language packs installed as Python packages."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from junction.plugins.lab.translations import is_valid_locale

from .conftest import Serve, install_package

pytestmark = pytest.mark.anyio

LOCALE_PLUGIN = "@jupyterlab/translation-extension:plugin"


@pytest.fixture
def french(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A French language pack, plus an extension shipping its own French catalog."""
    site = tmp_path / "site"
    pack = install_package(site, "fake_pack_fr", "fake_pack_fr", "jupyterlab.languagepack", "fr_FR")
    messages = pack / "locale" / "fr_FR" / "LC_MESSAGES"
    messages.mkdir(parents=True)
    (messages / "jupyterlab.json").write_text(
        json.dumps({"": {"domain": "jupyterlab", "language": "fr_FR"}, "File": ["Fichier"]})
    )
    ext = install_package(site, "acme_locale", "acme_locale", "jupyterlab.locale", "acme")
    ext_messages = ext / "locale" / "fr_FR" / "LC_MESSAGES"
    ext_messages.mkdir(parents=True)
    (ext_messages / "acme.json").write_text(json.dumps({"Hello": ["Bonjour"]}))
    monkeypatch.syspath_prepend(str(site))


async def test_english_is_always_available_and_needs_no_pack(serve: Serve) -> None:
    async with serve() as client:
        listing = await client.get("/lab/api/translations")
        default = await client.get("/lab/api/translations/default")
    assert listing.json()["data"]["en"] == {"displayName": "English", "nativeName": "English"}
    assert default.json() == {"data": {}, "message": ""}


async def test_missing_or_invalid_packs_answer_200_with_a_message(serve: Serve) -> None:
    async with serve() as client:
        missing = await client.get("/lab/api/translations/de_DE")
        invalid = await client.get("/lab/api/translations/x!y")
    assert missing.status_code == 200
    assert missing.json() == {"data": {}, "message": "Language pack 'de_DE' not installed!"}
    assert invalid.json()["message"] == "Language pack 'x!y' not valid!"


@pytest.mark.usefixtures("french")
async def test_installed_pack_is_listed_and_served_with_package_catalogs(serve: Serve) -> None:
    async with serve() as client:
        listing = (await client.get("/lab/api/translations")).json()["data"]
        pack = (await client.get("/lab/api/translations/fr_FR")).json()
    assert listing["fr_FR"]["nativeName"] == "Français (France)"
    assert listing["fr_FR"]["displayName"] == "French (France)"
    assert pack["message"] == ""
    assert pack["data"]["jupyterlab"]["File"] == ["Fichier"]
    assert pack["data"]["acme"] == {"Hello": ["Bonjour"]}


@pytest.mark.usefixtures("french")
async def test_default_follows_the_language_the_user_chose(serve: Serve) -> None:
    async with serve() as client:
        saved = await client.put(
            f"/lab/api/settings/{LOCALE_PLUGIN}", json={"raw": '{"locale": "fr_FR"}'}
        )
        default = (await client.get("/lab/api/translations/default")).json()
        listing = (await client.get("/lab/api/translations")).json()["data"]
    assert saved.status_code == 204
    assert default["data"]["jupyterlab"]["File"] == ["Fichier"]
    assert listing["en"]["displayName"] == "Anglais"


@pytest.mark.parametrize(
    "locale",
    ["%2E%2E", "..%2F..%2F..%2Fetc", "fr_FR%2F..%2F..%2Fx", "fr%00", "fr%5C..", "FR", "f"],
)
@pytest.mark.usefixtures("french")
async def test_odd_locales_in_the_url_are_not_valid(serve: Serve, locale: str) -> None:
    async with serve() as client:
        response = await client.get(f"/lab/api/translations/{locale}")
    assert response.status_code in (200, 404)
    if response.status_code == 200:
        assert response.json()["data"] == {}
        assert response.json()["message"].endswith("not valid!")


@pytest.mark.usefixtures("french")
async def test_an_odd_locale_chosen_in_the_settings_is_not_used(serve: Serve) -> None:
    """The locale setting is any string the user saves; it never becomes a path."""
    async with serve() as client:
        saved = await client.put(
            f"/lab/api/settings/{LOCALE_PLUGIN}", json={"raw": '{"locale": "../../fr_FR"}'}
        )
        default = (await client.get("/lab/api/translations/default")).json()
        listing = await client.get("/lab/api/translations")
    assert saved.status_code == 204
    assert default == {"data": {}, "message": "Language pack '../../fr_FR' not valid!"}
    assert listing.status_code == 200
    assert listing.json()["data"]["en"]["displayName"] == "English"


@pytest.mark.parametrize("locale", ["..", "../fr_FR", "fr_FR/..", "fr_FR\\x", "fr\x00", "/etc"])
def test_locale_names_never_hold_path_parts(locale: str) -> None:
    assert not is_valid_locale(locale)
