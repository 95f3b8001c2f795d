"""The kernelspecs plugin: ``/api/kernelspecs`` and ``/kernelspecs/{name}/{file}``.

Map of the package:

- ``service.py``: the :class:`KernelSpecService` Protocol, the :data:`KERNELSPECS` key, the
  errors and :class:`InstalledKernelSpec` (what kernel launchers get).
- ``models.py``: wire models.
- ``catalog.py``: :class:`JupyterClientKernelSpecs`, the service over jupyter_client's
  ``KernelSpecManager``, cached and scanned off the event loop.
- ``routes.py``: the HTTP routes.
- ``settings.py``: :class:`KernelSpecsSettings`.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from junction.plugin import Plugin, PluginContext
from junction.plugins.kernelspecs.catalog import JupyterClientKernelSpecs
from junction.plugins.kernelspecs.routes import router
from junction.plugins.kernelspecs.service import (
    KERNELSPECS,
    InstalledKernelSpec,
    KernelSpecNotFound,
    KernelSpecService,
)
from junction.plugins.kernelspecs.settings import KernelSpecsSettings

__all__ = [
    "KERNELSPECS",
    "InstalledKernelSpec",
    "KernelSpecNotFound",
    "KernelSpecService",
    "plugin",
]


@asynccontextmanager
async def lifespan(ctx: PluginContext[KernelSpecsSettings]) -> AsyncIterator[None]:
    """Provide :data:`KERNELSPECS`; there is nothing to stop."""
    ctx.provide(KERNELSPECS, JupyterClientKernelSpecs(ctx.settings, base_url=ctx.server.base_url))
    yield


plugin = Plugin(
    name="kernelspecs",
    description="Kernel specs API: installed kernels and their logos (/api/kernelspecs).",
    settings=KernelSpecsSettings,
    routers=[router],
    lifespan=lifespan,
    provides=[KERNELSPECS],
    order_hint=40,
)
