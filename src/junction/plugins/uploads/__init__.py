"""The uploads plugin: resumable uploads with the tus 1.0.0 protocol at ``/api/uploads``.

``POST`` creates an upload (``Upload-Length``, and ``Upload-Metadata`` naming the
destination), ``PATCH`` appends bytes from exactly ``Upload-Offset``, ``HEAD`` says how
many arrived (a client that lost its connection continues from there), ``DELETE``
terminates; the last byte moves the file into place atomically. Records live in the
database (``uploads_uploads``); bytes wait in partial files in a private directory;
abandoned uploads expire. JupyterLab's chunked contents uploads are unaffected.

Map of the package:

- ``service.py``: the :class:`UploadService` Protocol, the :data:`UPLOADS` key, the errors.
- ``models.py``: :class:`Upload` and :class:`NewUpload`.
- ``records.py``: :class:`TableUploads`, the service: records, appends, quotas, expiry.
- ``partials.py``: the private directory of partial files, appended to and flushed.
- ``placing.py``: destination checks and the atomic move into place.
- ``protocol.py``: tus headers, checksums, the protocol's own errors (412, 415).
- ``tables.py``, ``migrations/``: the table and its Alembic revisions.
- ``routes.py``, ``settings.py``: HTTP routes and :class:`UploadsSettings`.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Iterable
from contextlib import asynccontextmanager
from pathlib import Path

import anyio
import anyio.to_thread
from prometheus_client.core import GaugeMetricFamily, Metric

from junction.metrics import METRICS
from junction.plugin import Plugin, PluginContext
from junction.plugins.contents.service import CONTENTS
from junction.plugins.uploads.partials import PartialFiles
from junction.plugins.uploads.placing import Destinations
from junction.plugins.uploads.records import TableUploads
from junction.plugins.uploads.routes import router
from junction.plugins.uploads.service import UPLOADS, UploadNotFound, UploadService
from junction.plugins.uploads.settings import UploadsSettings
from junction.plugins.uploads.tables import TABLES
from junction.services import DATABASE

__all__ = ["UPLOADS", "UploadNotFound", "UploadService", "plugin"]

log = logging.getLogger("junction.uploads")


def _default_directory() -> Path:
    from jupyter_core.paths import jupyter_data_dir

    return Path(jupyter_data_dir()) / "junction" / "uploads"


@asynccontextmanager
async def lifespan(ctx: PluginContext[UploadsSettings]) -> AsyncIterator[None]:
    """Provide :data:`UPLOADS`; delete expired uploads at start and every ``expire_every``
    seconds."""
    settings = ctx.settings
    contents = ctx.get(CONTENTS)
    partials = PartialFiles(settings.directory or _default_directory())
    try:
        await anyio.to_thread.run_sync(partials.prepare)
    except OSError as exc:  # the server still starts; creating an upload tries again
        log.warning("cannot prepare %s for partial uploads: %s", partials.directory, exc)
    uploads = TableUploads(
        ctx.get(DATABASE),
        partials=partials,
        destinations=Destinations(
            str(ctx.server.root_dir),
            allow_hidden=contents.settings.allow_hidden,
            resolve=contents.os_path,
        ),
        max_size=settings.max_size,
        max_uploads_per_user=settings.max_uploads_per_user,
        max_bytes_per_user=settings.max_bytes_per_user,
        expire_after=settings.expire_after,
    )
    await _sweep(uploads)  # what a stopped server left behind
    ctx.provide(UPLOADS, uploads)
    sweeping = anyio.CancelScope()
    ctx.task_group.start_soon(_expire_regularly, uploads, settings.expire_every, sweeping)
    metrics = ctx.get_optional(METRICS)
    remove_collector = metrics.add_collector(lambda: _collect(uploads)) if metrics else None
    try:
        yield
    finally:
        sweeping.cancel()
        if remove_collector is not None:
            remove_collector()


async def _expire_regularly(uploads: TableUploads, every: float, scope: anyio.CancelScope) -> None:
    with scope:
        while True:
            await anyio.sleep(every)
            # Shielded: a sweep stopped mid-query would leave its database connection behind.
            with anyio.CancelScope(shield=True):
                await _sweep(uploads)


async def _sweep(uploads: TableUploads) -> None:
    try:
        await uploads.expire()
    except Exception as exc:  # the database or the disk may be away for a while
        log.warning("could not delete expired uploads: %s", exc)


def _collect(uploads: TableUploads) -> Iterable[Metric]:
    yield GaugeMetricFamily(
        "junction_uploads_receiving", "Uploads receiving bytes now.", value=uploads.busy()
    )


plugin = Plugin(
    name="uploads",
    description="Resumable uploads (/api/uploads) with the tus 1.0.0 protocol.",
    settings=UploadsSettings,
    routers=[router],
    lifespan=lifespan,
    provides=[UPLOADS],
    requires=[CONTENTS, DATABASE],
    optional=[METRICS],
    tables=TABLES,
)
