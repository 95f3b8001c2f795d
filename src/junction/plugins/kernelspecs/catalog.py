"""Kernel specs found by jupyter_client's ``KernelSpecManager``, scanned off the event loop.

A scan reads every kernel spec directory (``jupyter kernelspec list`` shows the same set,
ipykernel's own ``python3`` included) and the resource files of each spec. Scans are cached
for ``cache_ttl`` seconds; concurrent requests share one scan. A lookup by name that misses
the cache scans again at once (callers missing together share one scan), so a spec
installed a moment ago can be started without waiting for the cache to expire.
"""

from __future__ import annotations

import logging
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote

import anyio
from jupyter_client.kernelspec import NATIVE_KERNEL_NAME, KernelSpecManager
from jupyter_core.paths import jupyter_path

from junction.plugins.kernelspecs.models import KernelSpec, KernelSpecList
from junction.plugins.kernelspecs.service import (
    InstalledKernelSpec,
    KernelSpecNotFound,
    KernelSpecResourceNotFound,
)
from junction.plugins.kernelspecs.settings import KernelSpecsSettings

__all__ = ["JupyterClientKernelSpecs", "kernel_dirs"]

log = logging.getLogger("junction.kernelspecs")

_RESOURCE_FILES = ("kernel.js", "kernel.css")


@dataclass(frozen=True, slots=True)
class _Entry:
    installed: InstalledKernelSpec
    model: KernelSpec


class JupyterClientKernelSpecs:
    """Implements :class:`~junction.plugins.kernelspecs.service.KernelSpecService`."""

    def __init__(
        self,
        settings: KernelSpecsSettings,
        *,
        base_url: str,
        manager: KernelSpecManager | None = None,
    ) -> None:
        self._settings = settings
        self._base_url = base_url
        self._manager = (
            manager if manager is not None else KernelSpecManager(kernel_dirs=kernel_dirs())
        )
        self._default = NATIVE_KERNEL_NAME
        self._entries: dict[str, _Entry] = {}
        self._scanned_at: float | None = None
        self._lock = anyio.Lock()

    @property
    def default_name(self) -> str:
        """The spec used when a client names none (ipykernel's ``python3`` unless set)."""
        return self._default

    def set_default(self, name: str) -> None:
        """Report ``name`` as the default spec."""
        self._default = name

    async def list(self) -> KernelSpecList:
        """Every installed spec, from a scan at most ``cache_ttl`` seconds old."""
        entries = await self._fresh(self._settings.cache_ttl)
        specs = {name: entry.model for name, entry in sorted(entries.items())}
        return KernelSpecList(default=self._default, kernelspecs=specs)

    async def get(self, name: str) -> KernelSpec:
        """One spec's wire model; raises :class:`KernelSpecNotFound`."""
        return (await self._entry(name)).model

    async def find(self, name: str) -> InstalledKernelSpec:
        """The spec to launch ``name`` from; raises :class:`KernelSpecNotFound`."""
        return (await self._entry(name)).installed

    async def resource(self, name: str, path: str) -> Path:
        """A file inside the spec's directory; never one outside it."""
        directory = (await self._entry(name)).installed.resource_dir
        found = await anyio.to_thread.run_sync(_resource_file, directory, path)
        if found is None:
            raise KernelSpecResourceNotFound(name, path)
        return found

    async def _entry(self, name: str) -> _Entry:
        entries = await self._fresh(self._settings.cache_ttl)
        if name not in entries:
            entries = await self._scan_after(time.monotonic())
        try:
            return entries[name]
        except KeyError:
            raise KernelSpecNotFound(name) from None

    async def _fresh(self, max_age: float) -> dict[str, _Entry]:
        """Entries from a scan younger than ``max_age`` seconds."""
        if self._scanned_at is not None and time.monotonic() - self._scanned_at < max_age:
            return self._entries
        return await self._scan_after(time.monotonic() - max_age)

    async def _scan_after(self, moment: float) -> dict[str, _Entry]:
        """Entries from a scan that started after ``moment``; concurrent callers share one."""
        async with self._lock:
            if self._scanned_at is None or self._scanned_at <= moment:
                started = time.monotonic()
                self._entries = await anyio.to_thread.run_sync(self._scan)
                self._scanned_at = started
        return self._entries

    def _scan(self) -> dict[str, _Entry]:
        """Read every spec and list its resources; runs in a worker thread."""
        found: dict[str, Any] = self._manager.get_all_specs()
        entries: dict[str, _Entry] = {}
        for name, info in found.items():
            spec, resource_dir = info.get("spec"), info.get("resource_dir")
            if not isinstance(spec, dict) or not resource_dir:
                log.warning("kernel spec %s has no spec or resource directory; skipped", name)
                continue
            directory = Path(resource_dir)
            installed = InstalledKernelSpec(name=name, spec=spec, resource_dir=directory)
            model = KernelSpec(name=name, spec=spec, resources=self._resources(name, directory))
            entries[name] = _Entry(installed, model)
        return entries

    def _resources(self, name: str, directory: Path) -> dict[str, str]:
        """Resource URLs as Jupyter reports them: logos keyed without extension."""
        try:
            files = sorted(os.listdir(directory))
        except OSError:
            return {}
        prefix = f"{self._base_url}kernelspecs/{quote(name, safe='')}/"
        resources: dict[str, str] = {}
        for file in files:
            if file in _RESOURCE_FILES:
                resources[file] = prefix + quote(file)
            elif file.startswith("logo-"):
                resources[os.path.splitext(file)[0]] = prefix + quote(file)
        return resources


def kernel_dirs() -> list[str]:
    """Where specs are looked for: ``jupyter_path("kernels")``, then IPython's ``kernels``.

    jupyter_client's own default finds IPython's directory through ``IPython.paths``, which
    imports all of IPython into the server (about 2.5 MB, for one path). Its rule is kept:
    ``$IPYTHONDIR`` or ``~/.ipython`` (the temporary directory IPython falls back to when
    that is not writable would hold no specs).
    """
    ipython_dir = os.environ.get("IPYTHONDIR") or os.path.join("~", ".ipython")
    return [
        *jupyter_path("kernels"),
        os.path.join(os.path.normpath(os.path.expanduser(ipython_dir)), "kernels"),
    ]


def _resource_file(directory: Path, path: str) -> Path | None:
    """``directory/path`` if it is a regular file inside ``directory``; runs in a thread."""
    root = directory.resolve()
    candidate = (root / path).resolve()
    if not candidate.is_relative_to(root) or candidate == root or not candidate.is_file():
        return None
    return candidate
