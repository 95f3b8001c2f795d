"""The jobs plugin: requests too long for one HTTP exchange, run in the background.

``POST /api/jobs`` starts one and answers ``202 Accepted`` (``zip``: a folder as an archive
to download; ``copy``: a folder copied to a new path; ``export``: a notebook exported by
nbconvert; ``run``: a notebook run headless in a fresh kernel, written with its outputs);
``GET /api/jobs/{id}`` and its server-sent ``events`` follow its progress; ``DELETE`` cancels
it; ``result`` downloads the archive or export. Records live in the database (``jobs_jobs``)
and survive a restart.

Map of the package:

- ``service.py``: the :class:`JobService` Protocol, the :data:`JOBS` key, the errors.
- ``models.py``: wire models and job states.
- ``runner.py``: :class:`TableJobs`, the service: records, workers, cancellation.
- ``folders.py``: paths under the root, snapshots and change detection.
- ``archive.py``: the zip job, written in zipfile's streaming mode.
- ``copying.py``: the copy job.
- ``notebooks.py``: the export and run jobs: their checks, and the worker process they run
  (``notebook_worker.py``, nbconvert or nbclient with a kernel of its own).
- ``tables.py``, ``migrations/``: the table and its Alembic revisions.
- ``routes.py``, ``settings.py``: HTTP routes and :class:`JobsSettings`.
"""

from __future__ import annotations

import logging
import time
from collections.abc import AsyncIterator, Iterable
from contextlib import asynccontextmanager
from pathlib import Path

import anyio
from prometheus_client.core import GaugeMetricFamily, Metric

from junction.errors import ServiceUnavailable
from junction.metrics import METRICS
from junction.plugin import Plugin, PluginContext
from junction.plugins.jobs.routes import router
from junction.plugins.jobs.runner import TableJobs
from junction.plugins.jobs.service import JOBS, JobFinished, JobNotFound, JobService, NoResult
from junction.plugins.jobs.settings import JobsSettings
from junction.plugins.jobs.tables import TABLES
from junction.services import DATABASE

__all__ = ["JOBS", "JobFinished", "JobNotFound", "JobService", "NoResult", "plugin"]

log = logging.getLogger("junction.jobs")

_EXPIRE_EVERY = 3600.0
_QUERY_WAIT = 10.0


def _default_directory() -> Path:
    from jupyter_core.paths import jupyter_data_dir

    return Path(jupyter_data_dir()) / "junction" / "jobs"


@asynccontextmanager
async def lifespan(ctx: PluginContext[JobsSettings]) -> AsyncIterator[None]:
    """Provide :data:`JOBS`; mark jobs a stopped server left unfinished as failed; cancel
    running jobs at exit."""
    settings = ctx.settings
    jobs = TableJobs(
        ctx.get(DATABASE),
        root_dir=ctx.server.root_dir,
        directory=settings.directory or _default_directory(),
        task_group=ctx.task_group,
        max_running=settings.max_running,
        max_jobs_per_user=settings.max_jobs_per_user,
        max_bytes_per_user=settings.max_bytes_per_user,
        include_hidden=settings.include_hidden,
        base_url=ctx.server.base_url,
    )
    await jobs.recover()
    ctx.provide(JOBS, jobs)
    expiry = anyio.CancelScope()
    ctx.task_group.start_soon(_expire_regularly, jobs, settings.keep_days, expiry)
    heartbeat = anyio.CancelScope()
    ctx.task_group.start_soon(_beating, jobs, heartbeat)
    metrics = ctx.get_optional(METRICS)
    remove_collector = metrics.add_collector(lambda: _collect(jobs)) if metrics else None
    try:
        yield
    finally:
        expiry.cancel()
        heartbeat.cancel()
        if remove_collector is not None:
            remove_collector()
        await jobs.stop()


async def _expire_regularly(jobs: TableJobs, keep_days: float, scope: anyio.CancelScope) -> None:
    with scope:
        while True:
            # Stopping waits for a query under way (bounded): a query cancelled midway
            # leaves its connection to be torn down while the event loop closes.
            with anyio.CancelScope(shield=True), anyio.move_on_after(_QUERY_WAIT):
                try:
                    await jobs.expire(time.time() - keep_days * 86400)
                except ServiceUnavailable as exc:
                    log.warning("could not forget old jobs: %s", exc)
            await anyio.sleep(_EXPIRE_EVERY)


async def _beating(jobs: TableJobs, scope: anyio.CancelScope) -> None:
    with scope:
        await jobs.keep_alive()


def _collect(jobs: TableJobs) -> Iterable[Metric]:
    family = GaugeMetricFamily(
        "junction_jobs", "Jobs of this server, pending or running.", labels=["status"]
    )
    for status, count in sorted(jobs.counts().items()):
        family.add_metric([status], count)
    yield family


plugin = Plugin(
    name="jobs",
    description="Jobs API (/api/jobs): folders zipped or copied, notebooks exported or run, "
    "in the background.",
    settings=JobsSettings,
    routers=[router],
    lifespan=lifespan,
    provides=[JOBS],
    requires=[DATABASE],
    optional=[METRICS],
    tables=TABLES,
)
