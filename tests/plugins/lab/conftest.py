"""Fixtures for the lab tests: isolated Jupyter dirs, a small app dir, a prebuilt extension
with a settings schema and a theme, and an in-process app with plugin settings.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest

from junction.plugin import Plugin
from junction.plugins.frontend.appdir import find_app_dir
from junction.testing import app_client

Serve = Callable[..., AbstractAsyncContextManager[httpx.AsyncClient]]

THEMES = "@jupyterlab/apputils-extension:themes"
EXT_PLUGIN = "@acme/hello:plugin"


def install_package(
    site: Path, dist: str, module: str, group: str, name: str, target: str = ""
) -> Path:
    """A real distribution (dist-info with an entry point ``name = target or module``) in
    ``site``; returns its module dir.
    """
    package = site / module
    package.mkdir(parents=True)
    (package / "__init__.py").write_text("")
    info = site / f"{dist}-1.0.dist-info"
    info.mkdir()
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {dist}\nVersion: 1.0\n")
    (info / "entry_points.txt").write_text(f"[{group}]\n{name} = {target or module}\n")
    return package


@pytest.fixture(autouse=True)
def jupyter_config_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A fresh Jupyter config dir: labconfig files and the lab plugin's default data dir."""
    path = tmp_path / "jupyter-config"
    path.mkdir()
    monkeypatch.setenv("JUPYTER_CONFIG_DIR", str(path))
    monkeypatch.delenv("JUPYTERLAB_DIR", raising=False)
    return path


@pytest.fixture
def root_dir(tmp_path: Path) -> Path:
    """The server's root directory."""
    path = tmp_path / "root"
    path.mkdir()
    return path


@pytest.fixture
def small_app_dir(tmp_path: Path) -> Path:
    """An app dir with the real shell and two real core schema packages, so admin files
    (``settings/overrides.json``) can be written without touching the installed JupyterLab.
    """
    real = find_app_dir(None)
    app = tmp_path / "app"
    (app / "static").mkdir(parents=True)
    for name in ("index.html", "package.json", "third-party-licenses.json"):
        shutil.copy(real / "static" / name, app / "static" / name)
    for package in ("apputils-extension", "translation-extension"):
        shutil.copytree(
            real / "schemas" / "@jupyterlab" / package, app / "schemas" / "@jupyterlab" / package
        )
    shutil.copytree(real / "themes", app / "themes")
    (app / "settings").mkdir()
    return app


@pytest.fixture
def labextensions(tmp_path: Path) -> Path:
    """``@acme/hello``: a prebuilt extension with a settings schema, a theme, licenses."""
    root = tmp_path / "labextensions"
    ext = root / "@acme" / "hello"
    (ext / "static").mkdir(parents=True)
    package = {
        "name": "@acme/hello",
        "version": "0.4.0",
        "description": "hello",
        "license": "MIT",
        "jupyterlab": {"_build": {"load": "static/remoteEntry.0123456789abcdef0123.js"}},
    }
    (ext / "package.json").write_text(json.dumps(package))
    (ext / "static" / "remoteEntry.0123456789abcdef0123.js").write_text("/* */")
    schemas = ext / "schemas" / "@acme" / "hello"
    schemas.mkdir(parents=True)
    schema = {
        "title": "Hello",
        "type": "object",
        "properties": {
            "greeting": {"type": "string", "default": "hi"},
            "colors": {"type": "object", "default": {"fg": "black", "bg": "white"}},
        },
        "additionalProperties": False,
    }
    (schemas / "plugin.json").write_text(json.dumps(schema))
    (schemas / "package.json.orig").write_text(json.dumps({"version": "0.4.0"}))
    theme = ext / "themes" / "@acme" / "hello"
    theme.mkdir(parents=True)
    (theme / "index.css").write_text(":root { --acme: 1; }")
    licenses = {"packages": [{"name": "left-pad", "versionInfo": "1.3.0", "licenseId": "WTFPL",
                              "extractedText": "do what you want"}]}  # fmt: skip
    (ext / "static" / "third-party-licenses.json").write_text(json.dumps(licenses))
    return root


@pytest.fixture
def lab_database_url() -> str | None:
    """The database the lab tests use: None for the default (``junction.db`` in the test's
    own Jupyter data dir). Store tests override it with ``database_url`` (SQLite and
    PostgreSQL)."""
    return None


async def query(url: str, statement: str) -> list[tuple[Any, ...]]:
    """Rows of one SQL statement run on the database at ``url``."""
    from sqlalchemy import text

    from junction.database import Database

    database = Database(url)
    try:
        async with database.session() as session:
            result = await session.execute(text(statement))
            return (
                [tuple(row) for row in result.all()]
                if getattr(result, "returns_rows", False)
                else []
            )
    finally:
        await database.close()


@pytest.fixture
def serve(
    root_dir: Path, labextensions: Path, tmp_path: Path, lab_database_url: str | None
) -> Serve:
    """Start frontend + lab (+ ``enable``) in-process; lab files go to ``tmp/lab-data``."""

    @asynccontextmanager
    async def start(
        *,
        enable: Sequence[str] = (),
        frontend: dict[str, Any] | None = None,
        lab: dict[str, Any] | None = None,
        plugins: Sequence[Plugin] = (),
        authenticated: bool = True,
        **server: Any,
    ) -> AsyncIterator[httpx.AsyncClient]:
        sections = {
            "frontend": {"extra_labextensions_path": [str(labextensions)], **(frontend or {})},
            "lab": {"data_dir": str(tmp_path / "lab-data"), **(lab or {})},
        }
        if lab_database_url is not None:
            server.setdefault("database_url", lab_database_url)
        async with app_client(
            plugins=plugins,
            plugin_settings=sections,
            authenticated=authenticated,
            enable=["frontend", "lab", *enable],
            root_dir=root_dir,
            **server,
        ) as client:
            yield client

    return start
