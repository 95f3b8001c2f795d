"""The kernels plugin: ``/api/kernels``, its kernel WebSocket, and the :data:`KERNELS` service.

Map of the package:

- ``service.py``: the :class:`KernelService` Protocol, the :data:`KERNELS` key, the errors.
- ``models.py``: wire models.
- ``manager.py``: :class:`JupyterClientKernels`, the service: kernels by id, limits,
  the monitor (auto-restart) and culler loops, shutdown of everything at exit.
- ``kernel.py``: :class:`ManagedKernel`, one kernel's lifecycle over jupyter_client's
  ``AsyncKernelManager`` and its provisioners.
- ``hub.py``: :class:`KernelHub`, one kernel's ZeroMQ sockets shared by all its clients,
  and the routing of messages between them.
- ``slots.py``: :class:`ClientSlot`, one client's outbox and replay buffer.
- ``connection.py``: one WebSocket: protocol choice, read and write loops, close codes.
- ``wire.py``: message formats (ZeroMQ, v1 binary, JSON) and signing.
- ``reaper.py``: the process that kills kernels a dead server left behind.
- ``routes.py``, ``settings.py``: HTTP/WebSocket routes and :class:`KernelsSettings`.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from junction.plugin import Plugin, PluginContext
from junction.plugins.kernels.manager import JupyterClientKernels
from junction.plugins.kernels.routes import router
from junction.plugins.kernels.service import (
    KERNELS,
    KernelNotFound,
    KernelService,
    KernelSpecNotFound,
    KernelStartFailed,
)
from junction.plugins.kernels.settings import KernelsSettings
from junction.plugins.kernelspecs.service import KERNELSPECS
from junction.services import SERVER

__all__ = [
    "KERNELS",
    "KernelNotFound",
    "KernelService",
    "KernelSpecNotFound",
    "KernelStartFailed",
    "plugin",
]


@asynccontextmanager
async def lifespan(ctx: PluginContext[KernelsSettings]) -> AsyncIterator[None]:
    """Provide :data:`KERNELS`, report gauges and activity; shut every kernel down at exit."""
    specs = ctx.get(KERNELSPECS)
    specs.set_default(ctx.settings.default_kernel_name)
    server = ctx.get(SERVER)
    kernels = JupyterClientKernels(
        ctx.settings,
        specs=specs,
        root_dir=ctx.server.root_dir,
        base_url=ctx.server.base_url,
        task_group=ctx.task_group,
        max_message_size=ctx.server.websocket_max_message_size,
    )
    async with kernels:
        ctx.provide(KERNELS, kernels)
        server.gauges["kernels"] = kernels.kernel_count
        server.gauges["connections"] = kernels.connection_count
        server.activity_sources.append(kernels.last_activity)
        try:
            yield
        finally:
            server.gauges.pop("kernels", None)
            server.gauges.pop("connections", None)
            server.activity_sources.remove(kernels.last_activity)


plugin = Plugin(
    name="kernels",
    description="Kernels API and kernel WebSocket (/api/kernels), over jupyter_client.",
    settings=KernelsSettings,
    routers=[router],
    lifespan=lifespan,
    provides=[KERNELS],
    requires=[KERNELSPECS, SERVER],
    order_hint=50,
)
