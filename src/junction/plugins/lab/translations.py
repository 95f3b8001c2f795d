"""Language packs: which are installed, and the strings of one.

A language pack is a Python package registered under the ``jupyterlab.languagepack`` entry
point group, named by its locale (``fr_FR``), holding gettext-as-JSON catalogs
(``locale/fr_FR/LC_MESSAGES/<domain>.json``). Packages may also ship their own catalogs
under the ``jupyterlab.locale`` group; those fill in domains the pack lacks. English is
built into JupyterLab and needs no pack.

Every function here reads the disk or imports packages: run them in a worker thread.
"""

from __future__ import annotations

import json
import logging
import re
from importlib.metadata import entry_points
from pathlib import Path
from typing import Any

__all__ = [
    "DEFAULT_LOCALE",
    "LANGUAGE_PACK_GROUP",
    "PACKAGE_LOCALE_GROUP",
    "display_name",
    "installed_packs",
    "is_valid_locale",
    "language_pack",
    "language_packs",
]

log = logging.getLogger("junction.lab")

DEFAULT_LOCALE = "en"
LANGUAGE_PACK_GROUP = "jupyterlab.languagepack"
PACKAGE_LOCALE_GROUP = "jupyterlab.locale"
_LOCALE = re.compile(r"[a-z]{2,3}([_-][A-Za-z0-9]{2,8})*")


def is_valid_locale(locale: str) -> bool:
    """Whether ``locale`` looks like a locale name (``en``, ``fr_FR``, ``zh_Hans_CN``)."""
    return _LOCALE.fullmatch(locale) is not None


def display_name(locale: str, in_locale: str) -> str:
    """The name of ``locale`` written in ``in_locale`` (Babel when installed, else the code)."""
    try:
        from babel import Locale  # optional: JupyterLab's server requires it, we do not

        name = Locale.parse(locale).get_display_name(Locale.parse(in_locale))
    except Exception:  # unknown locale or no Babel: fall back to the code itself
        return locale
    return str(name)[:1].upper() + str(name)[1:] if name else locale


def _entry_point_dirs(group: str) -> dict[str, Path]:
    found: dict[str, Path] = {}
    for entry in entry_points(group=group):
        try:
            module = entry.load()
        except Exception as exc:  # a broken pack must not break the UI
            log.warning("ignoring %s entry point %s: %r", group, entry.name, exc)
            continue
        location = getattr(module, "__file__", None)
        if location:
            found.setdefault(entry.name, Path(location).parent)
    return found


def installed_packs() -> dict[str, Path]:
    """Locale -> directory of every installed language pack."""
    return _entry_point_dirs(LANGUAGE_PACK_GROUP)


def language_packs(display_locale: str = DEFAULT_LOCALE) -> dict[str, dict[str, str]]:
    """Every available locale (English first) with its display and native names."""
    shown_in = display_locale if is_valid_locale(display_locale) else DEFAULT_LOCALE
    locales = {
        DEFAULT_LOCALE: {
            "displayName": display_name(DEFAULT_LOCALE, shown_in),
            "nativeName": display_name(DEFAULT_LOCALE, DEFAULT_LOCALE),
        }
    }
    for locale in sorted(installed_packs()):
        if not is_valid_locale(locale):
            log.warning("ignoring language pack with an invalid locale name %r", locale)
            continue
        locales[locale] = {
            "displayName": display_name(locale, shown_in),
            "nativeName": display_name(locale, locale),
        }
    return locales


def language_pack(locale: str) -> tuple[dict[str, Any], str]:
    """The catalogs of ``locale`` by domain, and a message (empty when all is well).

    English needs no pack (no data, no message). A locale without a pack gets no data and
    a message saying so, as JupyterLab expects, never an error.
    """
    if locale == DEFAULT_LOCALE:
        return {}, ""
    if not is_valid_locale(locale):
        return {}, f"Language pack '{locale}' not valid!"
    pack = installed_packs().get(locale)
    if pack is None:
        return {}, f"Language pack '{locale}' not installed!"
    data: dict[str, Any] = {}
    for catalog in sorted(pack.rglob("*.json")):
        loaded = _read_catalog(catalog)
        if loaded is not None:
            data.setdefault(catalog.stem, loaded)
    for domain, root in _entry_point_dirs(PACKAGE_LOCALE_GROUP).items():
        if domain in data:
            continue
        catalog = root / "locale" / locale / "LC_MESSAGES" / f"{domain}.json"
        loaded = _read_catalog(catalog)
        if loaded is not None:
            data[domain] = loaded
    return data, ""


def _read_catalog(path: Path) -> dict[str, Any] | None:
    try:
        data = json.loads(path.read_text("utf-8"))
    except (OSError, ValueError) as exc:
        if path.exists():
            log.warning("ignoring translation catalog %s: %s", path, exc)
        return None
    return data if isinstance(data, dict) else None
