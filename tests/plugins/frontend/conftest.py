"""Fixtures for the frontend tests: an isolated Jupyter config dir, a fake prebuilt extension,
and an in-process app with plugin settings.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest

from junction.plugin import Plugin
from junction.testing import app_client

Serve = Callable[..., AbstractAsyncContextManager[httpx.AsyncClient]]

EXTENSION_ENTRY = "static/remoteEntry.0123456789abcdef0123.js"


@pytest.fixture(autouse=True)
def jupyter_config_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Point Jupyter's config dir (labconfig, the lab plugin's data) at a fresh directory."""
    path = tmp_path / "jupyter-config"
    path.mkdir()
    monkeypatch.setenv("JUPYTER_CONFIG_DIR", str(path))
    monkeypatch.delenv("JUPYTERLAB_DIR", raising=False)
    return path


def write_extension(root: Path, name: str, *, version: str = "1.2.3", **jupyterlab: Any) -> Path:
    """A prebuilt extension named ``name`` under labextensions dir ``root``."""
    directory = root.joinpath(*name.split("/"))
    (directory / "static").mkdir(parents=True)
    build = {"load": EXTENSION_ENTRY, "extension": "./extension", "style": "./style"}
    package = {
        "name": name,
        "version": version,
        "description": f"the {name} extension",
        "homepage": f"https://example.org/{name}",
        "license": "BSD-3-Clause",
        "jupyterlab": {"_build": build, **jupyterlab},
    }
    (directory / "package.json").write_text(json.dumps(package))
    (directory / EXTENSION_ENTRY).write_text("/* remote entry */")
    (directory / "static" / "style.js").write_text("/* style */")
    (directory / "install.json").write_text(
        json.dumps({"packageManager": "python", "packageName": name.replace("/", "-")})
    )
    return directory


@pytest.fixture
def labextensions(tmp_path: Path) -> Path:
    """A labextensions dir holding ``@acme/hello`` (scoped) and ``plain-ext``."""
    root = tmp_path / "labextensions"
    write_extension(root, "@acme/hello")
    write_extension(root, "plain-ext", disabledExtensions=["@jupyterlab/foo-extension:bar"])
    return root


@pytest.fixture
def root_dir(tmp_path: Path) -> Path:
    """The server's root directory."""
    path = tmp_path / "root"
    path.mkdir()
    return path


@pytest.fixture
def serve(root_dir: Path, labextensions: Path) -> Serve:
    """Start the app in-process with the frontend (and whatever else is asked for)."""

    @asynccontextmanager
    async def start(
        *,
        enable: Sequence[str] = ("frontend",),
        frontend: dict[str, Any] | None = None,
        lab: dict[str, Any] | None = None,
        plugins: Sequence[Plugin] = (),
        authenticated: bool = True,
        **server: Any,
    ) -> AsyncIterator[httpx.AsyncClient]:
        sections = {
            "frontend": {"extra_labextensions_path": [str(labextensions)], **(frontend or {})}
        }
        if lab is not None:
            sections["lab"] = lab
        async with app_client(
            plugins=plugins,
            plugin_settings=sections,
            authenticated=authenticated,
            enable=list(enable),
            root_dir=root_dir,
            **server,
        ) as client:
            yield client

    return start
