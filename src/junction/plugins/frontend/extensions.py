"""Discovering prebuilt ("federated") extensions in the labextensions directories.

An extension lives in ``<labextensions dir>/<name>/`` or ``<dir>/@<org>/<name>/`` with a
``package.json`` whose ``jupyterlab._build`` block names its remote entry script (written by
JupyterLab's extension builder), a ``static/`` folder, optional ``schemas/`` and an
``install.json`` saying which Python package put it there. The first directory on the path
that holds a name wins.
"""

from __future__ import annotations

import contextlib
import json
import logging
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

from junction.plugins.frontend.models import FederatedExtension

__all__ = ["extension_dirs", "read_extension", "scan_extensions"]

log = logging.getLogger("junction.frontend")


def extension_dirs(root: Path) -> Iterator[Path]:
    """The extension directories directly under one labextensions directory, sorted."""
    try:
        entries = sorted(root.iterdir())
    except OSError:
        return
    for entry in entries:
        if entry.name.startswith("@"):
            try:
                scoped = sorted(entry.iterdir())
            except OSError:
                continue
            yield from (child for child in scoped if (child / "package.json").is_file())
        elif (entry / "package.json").is_file():
            yield entry


def read_extension(directory: Path) -> FederatedExtension | None:
    """Read one extension directory; None (and a warning) if it is not a prebuilt extension."""
    try:
        package: dict[str, Any] = json.loads((directory / "package.json").read_text("utf-8"))
    except (OSError, ValueError) as exc:
        log.warning("ignoring labextension %s: unreadable package.json (%s)", directory, exc)
        return None
    meta = package.get("jupyterlab") or {}
    build = meta.get("_build") if isinstance(meta, dict) else None
    name = package.get("name")
    if not isinstance(build, dict) or not isinstance(build.get("load"), str) or not name:
        log.warning("ignoring %s: not a prebuilt JupyterLab extension", directory)
        return None
    install = None
    with contextlib.suppress(OSError, ValueError):
        install = json.loads((directory / "install.json").read_text("utf-8"))
    disabled = meta.get("disabledExtensions") or []
    return FederatedExtension(
        name=str(name),
        version=str(package.get("version", "")),
        path=directory,
        load=build["load"],
        extension=build.get("extension"),
        mime_extension=build.get("mimeExtension"),
        style=build.get("style"),
        entrypoints=build.get("entrypoints"),
        disabled_extensions=tuple(str(item) for item in disabled if isinstance(item, str)),
        description=str(package.get("description") or ""),
        url=_homepage(package),
        install=install if isinstance(install, dict) else None,
        package=package,
    )


def scan_extensions(path: Sequence[Path]) -> list[FederatedExtension]:
    """Every prebuilt extension on ``path``, the first found per name, in path order.

    Blocking (reads the disk): run it in a worker thread.
    """
    found: dict[str, FederatedExtension] = {}
    for root in path:
        for directory in extension_dirs(root):
            extension = read_extension(directory)
            if extension is not None and extension.name not in found:
                found[extension.name] = extension
    return list(found.values())


def _homepage(package: dict[str, Any]) -> str:
    homepage = package.get("homepage")
    if isinstance(homepage, str):
        return homepage
    repository = package.get("repository")
    if isinstance(repository, dict) and isinstance(repository.get("url"), str):
        return str(repository["url"])
    return ""
