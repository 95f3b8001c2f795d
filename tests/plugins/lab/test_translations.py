"""``/lab/api/translations``: language packs installed as Python packages."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

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
