"""The kernels plugin: ``/api/kernels``, its kernel WebSocket, and the :data:`KERNELS` service.

Map of the package:

- ``service.py``: the :class:`KernelService` Protocol, the :data:`KERNELS` key, the errors.
- ``models.py``: wire models.
- ``manager.py``: :class:`JupyterClientKernels`, the service: kernels by id, limits,
  the monitor (auto-restart) and culler loops, shutdown of everything at exit.
- ``kernel.py``: :class:`ManagedKernel`, one kernel's lifecycle over jupyter_client's
  ``AsyncKernelManager`` and its provisioners.
- ``pool.py``: :class:`KernelPool`, prespawned kernels (``prespawn_count``).
- ``seeding.py``: the seed notebook (``seed_uri``) and running it in a new kernel.
- ``hub.py``: :class:`KernelHub`, one kernel's ZeroMQ sockets shared by all its clients,
  and the routing of messages between them.
- ``slots.py``: :class:`ClientSlot`, one client's outbox and replay buffer.
- ``connection.py``: one WebSocket: protocol choice, read and write loops, close codes.
- ``wire.py``: message formats (ZeroMQ, v1 binary, JSON) and signing.
- ``metrics.py``: WebSocket traffic counters and the collector behind ``/metrics``.
- ``tables.py``, ``migrations/``: the ``kernels_kernels`` table; ``records.py``: the records
  in it (connection keys sealed), which let kernels outlive the server and be reached from
  any server sharing the database; ``reattach.py``: taking over a kernel another process
  started.
- ``routes.py``, ``settings.py``: HTTP/WebSocket routes and :class:`KernelsSettings`.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import anyio

from junction.auth.identity import load_cookie_secret
from junction.metrics import METRICS
from junction.plugin import Plugin, PluginContext
from junction.plugins.kernels.manager import JupyterClientKernels
from junction.plugins.kernels.metrics import collector
from junction.plugins.kernels.records import KernelRecords, Sealer
from junction.plugins.kernels.routes import router
from junction.plugins.kernels.seeding import SeedNotebook
from junction.plugins.kernels.service import (
    KERNELS,
    KernelNotFound,
    KernelSeedFailed,
    KernelService,
    KernelSpecNotFound,
    KernelStartFailed,
)
from junction.plugins.kernels.settings import KernelsSettings
from junction.plugins.kernels.tables import TABLES
from junction.plugins.kernelspecs.service import KERNELSPECS
from junction.services import AUTH, DATABASE, REAPER, SERVER

__all__ = [
    "KERNELS",
    "KernelNotFound",
    "KernelSeedFailed",
    "KernelService",
    "KernelSpecNotFound",
    "KernelStartFailed",
    "plugin",
]

log = logging.getLogger("junction.kernels")


@asynccontextmanager
async def lifespan(ctx: PluginContext[KernelsSettings]) -> AsyncIterator[None]:
    """Provide :data:`KERNELS`, report gauges and activity; shut every kernel down at exit."""
    settings = ctx.settings
    specs = ctx.get(KERNELSPECS)
    specs.set_default(settings.force_kernel_name or settings.default_kernel_name)
    server = ctx.get(SERVER)
    seed = None
    if settings.seed_uri is not None:
        seed = await anyio.to_thread.run_sync(SeedNotebook.load, settings.seed_uri, Path.cwd())
        log.info(
            "seed notebook %s: %d code cells, for %s kernels",
            settings.seed_uri,
            len(seed.cells),
            seed.language or "all",
        )
    sealer = Sealer(load_cookie_secret(ctx.server))
    kernels = JupyterClientKernels(
        ctx.settings,
        specs=specs,
        root_dir=ctx.server.root_dir,
        base_url=ctx.server.base_url,
        task_group=ctx.task_group,
        reaper=ctx.get(REAPER),
        max_message_size=ctx.server.websocket_max_message_size,
        seed=seed,
        records=KernelRecords(ctx.get(DATABASE), sealer),
        auth=ctx.get(AUTH),
    )
    async with kernels:
        ctx.provide(KERNELS, kernels)
        server.gauges["kernels"] = kernels.kernel_count
        server.gauges["connections"] = kernels.connection_count
        server.activity_sources.append(kernels.last_activity)
        metrics = ctx.get_optional(METRICS)
        remove_collector = metrics.add_collector(collector(kernels)) if metrics else None
        try:
            yield
        finally:
            if remove_collector is not None:
                remove_collector()
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
    optional=[METRICS],
    requires=[KERNELSPECS, SERVER, REAPER, DATABASE, AUTH],
    tables=TABLES,
    order_hint=50,
)
