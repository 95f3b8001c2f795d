""":class:`TableJobs`: jobs kept in ``jobs_jobs``, run in worker threads (zip, copy) or worker
processes (export, run: see :mod:`~junction.plugins.jobs.notebooks`), a few at a time.

Each job's record is written when it is submitted and whenever its status changes; progress
lives in memory (a :class:`~junction.plugins.jobs.folders.Reporter` the worker thread
updates) and is read live while the job runs, so counting bytes costs no database writes.
When the plugin starts, records left ``pending`` or ``running`` by a server that stopped are
marked failed; when it stops, running jobs are cancelled and recorded the same way.

Several servers may share the database (processes behind a proxy). Each row names the process
running the job and carries its heartbeat, renewed every :data:`HEARTBEAT` seconds with the
job's progress, so every process can show it; a job whose process is gone (a dead pid on the
same host, or a heartbeat older than :data:`STALE`) is marked failed by whichever process
notices. A ``DELETE`` received by another process sets the row's ``cancel`` flag, which the
running process reads at its next heartbeat.
"""

from __future__ import annotations

import contextlib
import logging
import os
import shutil
import socket
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path, PurePosixPath
from typing import Any

import anyio
import anyio.abc
import orjson
from sqlalchemy import Row, delete, insert, select, update

from junction.childenv import RunAs
from junction.database import Database
from junction.errors import BadRequest, Conflict, Forbidden
from junction.plugins.contents.service import REACH_GUARD
from junction.plugins.jobs.archive import TooLarge, UnportableName, write_zip
from junction.plugins.jobs.copying import copy_folder
from junction.plugins.jobs.folders import (
    Cancelled,
    FolderChanged,
    Guard,
    Held,
    Reporter,
    TooDeep,
    api_parts,
    open_folder,
)
from junction.plugins.jobs.models import FINISHED, Job, NewJob, Progress
from junction.plugins.jobs.notebooks import (
    EXPORT_FORMATS,
    WorkerFailed,
    check_available,
    check_kernel_name,
    partial_name,
    resolve_notebook,
    resolve_target,
    run_worker,
)
from junction.plugins.jobs.service import JobFinished, JobNotFound, NoResult, ResultFile
from junction.plugins.jobs.tables import JOBS_TABLE

__all__ = ["HEARTBEAT", "STALE", "STOPPED", "TableJobs"]

log = logging.getLogger("junction.jobs")

STOPPED = "the server stopped while the job ran"
"""The error of jobs a stopping (or crashed) server left unfinished."""

HEARTBEAT = 5.0
"""Seconds between two heartbeats of the jobs a process runs."""

STALE = 30.0
"""A job whose heartbeat is this old (seconds) belongs to a process that is gone."""

_STOP_WAIT = 10.0
_PROCESS = uuid.uuid4().hex[:8]
"""Tells this process from an earlier one that had the same pid."""
_CANCEL_WAIT = 30.0
_STORED = {"zip": ".zip", "export": ".export"}
"""The kinds whose result is a file kept for download, and its suffix in ``directory``."""
_OPTIONS = {"format": "export", "kernel_name": "run", "timeout": "run"}
"""Request fields only one kind takes."""


@dataclass
class _Live:
    """A job this process runs: its progress, and an event set at every change."""

    reporter: Reporter = field(default_factory=Reporter)
    changed: anyio.Event = field(default_factory=anyio.Event)
    finished: anyio.Event = field(default_factory=anyio.Event)
    waiting: anyio.CancelScope = field(default_factory=anyio.CancelScope)
    cancelling: bool = False
    started: bool = False
    work_done: bool = False
    held: list[int] = field(default_factory=list)
    """Descriptors of the folders the job works through (see ``open_folder``)."""

    def notify(self) -> None:
        self.changed.set()
        self.changed = anyio.Event()


def _iso(moment: float) -> str:
    return datetime.fromtimestamp(moment, UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


class TableJobs:
    """Implements :class:`~junction.plugins.jobs.service.JobService` over the database."""

    def __init__(
        self,
        database: Database,
        *,
        root_dir: Path,
        directory: Path,
        task_group: anyio.abc.TaskGroup,
        max_running: int,
        include_hidden: bool,
        base_url: str,
        max_jobs_per_user: int | None = None,
        max_bytes_per_user: int | None = None,
    ) -> None:
        self._database = database
        self._root = root_dir
        self.directory = directory
        self._task_group = task_group
        self._slots = anyio.Semaphore(max_running)
        self._include_hidden = include_hidden
        self._base_url = base_url
        self._max_jobs = max_jobs_per_user
        self._max_bytes = max_bytes_per_user
        self._submitting = anyio.Lock()
        self._live: dict[str, _Live] = {}
        self._host = _host()
        self.server = f"{self._host}:{os.getpid()}:{_PROCESS}"

    async def recover(self) -> int:
        """Mark jobs whose server is gone as failed and remove what they had half written;
        returns how many there were. Called at startup and at every heartbeat."""
        unfinished = JOBS_TABLE.c.status.in_(("pending", "running"))
        now = time.time()
        async with self._database.session() as session:
            rows = [
                row
                for row in (await session.execute(select(JOBS_TABLE).where(unfinished))).all()
                if self._gone(row.server, row.heartbeat, now)
            ]
            if not rows:
                return 0
            await session.execute(
                update(JOBS_TABLE)
                .where(JOBS_TABLE.c.id.in_([row.id for row in rows]))
                .values(status="failed", error=STOPPED, updated=time.time())
            )
        for row in rows:
            await anyio.to_thread.run_sync(self._remove_partial, row.id, row.destination)
        log.warning("%d jobs were left unfinished by a server that stopped", len(rows))
        return len(rows)

    def _gone(self, server: str, heartbeat: float, now: float) -> bool:
        if server == self.server:
            return False
        parts = server.rsplit(":", 2)
        if len(parts) == 3 and parts[0] == self._host and parts[1].isdigit():
            pid = int(parts[1])
            # Our own pid in another process: an earlier one (containers reuse pid 1).
            if pid == os.getpid() or not _alive(pid):
                return True
        return heartbeat < now - STALE

    async def keep_alive(self) -> None:
        """Every :data:`HEARTBEAT` seconds: renew this process's jobs' heartbeats and
        progress, stop those another process was asked to cancel, fail those of gone
        servers. Runs until cancelled."""
        while True:
            await anyio.sleep(HEARTBEAT)
            # Stopping waits for a beat under way (bounded): a query cancelled midway leaves
            # its connection to be torn down while the event loop closes.
            with anyio.CancelScope(shield=True), anyio.move_on_after(STALE / 2):
                try:
                    await self._beat()
                except Exception as exc:  # the database may be away for a while
                    log.warning("jobs heartbeat failed: %s", exc)

    async def _beat(self) -> None:
        live = dict(self._live)
        now = time.time()
        if live:
            async with self._database.session() as session:
                for job_id, job in live.items():
                    await session.execute(
                        update(JOBS_TABLE)
                        .where(JOBS_TABLE.c.id == job_id)
                        .values(heartbeat=now, done=job.reporter.done, total=job.reporter.total)
                    )
                query = select(JOBS_TABLE.c.id).where(
                    JOBS_TABLE.c.id.in_(list(live)) & JOBS_TABLE.c.cancel
                )
                cancelled = [row.id for row in await session.execute(query)]
            for job_id in cancelled:
                live[job_id].reporter.cancel()
                live[job_id].waiting.cancel()
        await self.recover()

    async def expire(self, older_than: float) -> int:
        """Forget ended jobs last changed before ``older_than`` (Unix time) and delete their
        archives; returns how many."""
        old = JOBS_TABLE.c.status.in_(tuple(FINISHED)) & (JOBS_TABLE.c.updated < older_than)
        async with self._database.session() as session:
            ids = [row.id for row in (await session.execute(select(JOBS_TABLE.c.id).where(old)))]
            await session.execute(delete(JOBS_TABLE).where(JOBS_TABLE.c.id.in_(ids)))
        for job_id in ids:
            await anyio.to_thread.run_sync(self._unlink_stored, job_id)
        return len(ids)

    def counts(self) -> dict[str, int]:
        """Jobs of this process by status (``pending`` or ``running``), for metrics."""
        counts = {"pending": 0, "running": 0}
        for live in self._live.values():
            counts["running" if live.started else "pending"] += 1
        return counts

    def _remove_partial(self, job_id: str, destination: str | None) -> None:
        self._archive(job_id).with_suffix(".zip.partial").unlink(missing_ok=True)
        partial_name(self._stored(job_id, "export"), job_id).unlink(missing_ok=True)
        if destination:
            where = self._root.joinpath(*PurePosixPath(destination).parts)
            shutil.rmtree(where.with_name(f".{where.name}.copy-{job_id}"), ignore_errors=True)
            partial_name(where, job_id).unlink(missing_ok=True)

    def _unlink_stored(self, job_id: str) -> None:
        for kind in _STORED:
            self._stored(job_id, kind).unlink(missing_ok=True)

    async def stop(self) -> None:
        """Cancel every job of this process and wait (bounded) until each has recorded it."""
        for live in self._live.values():
            live.cancelling = True
            live.reporter.cancel()
            live.waiting.cancel()
        with anyio.move_on_after(_STOP_WAIT):
            for live in list(self._live.values()):
                await live.finished.wait()

    # -- the service --------------------------------------------------------------------------

    async def submit(self, request: NewJob, owner: str, account: RunAs | None = None) -> Job:
        """Check the request and queue the job."""
        for option, kind in _OPTIONS.items():
            if getattr(request, option) is not None and request.kind != kind:
                raise BadRequest(f"'{option}' is for {kind} jobs only")
        if request.overwrite and request.kind not in ("export", "run"):
            raise BadRequest("'overwrite' is for export and run jobs only")
        guard = REACH_GUARD.get()  # the request's, in multi-user mode
        destination: Path | None = None
        held: list[int] = []  # descriptors the job works through, closed when it ends
        try:
            if request.kind in ("export", "run"):
                source = await self._check_notebook_job(request, guard)
                source_api = _api_path(self._root, source)
                if request.to is not None:
                    destination = await anyio.to_thread.run_sync(
                        lambda: resolve_target(
                            self._root, str(request.to), overwrite=request.overwrite, guard=guard
                        )
                    )
                destination_api = _api_path(self._root, destination) if destination else None
            else:
                folder = await anyio.to_thread.run_sync(
                    open_folder, self._root, request.path, guard
                )
                held.append(folder.fd)
                source, source_api, destination_api = folder.path, folder.api, None
                if request.kind == "copy":
                    parent, name = await anyio.to_thread.run_sync(
                        self._destination, request.to, guard
                    )
                    held.append(parent.fd)
                    destination = parent.path / name
                    destination_api = f"{parent.api}/{name}" if parent.api else name
                elif request.to is not None:
                    raise BadRequest("'to' is for copy, export and run jobs only")
            job_id = uuid.uuid4().hex
            live = _Live(held=held)
            async with self._submitting:  # one check-then-insert at a time in this process
                stores = destination is None
                max_bytes = await self._check_quota(owner, request.kind, stores=stores)
                work = self._work(
                    job_id, request, source, source_api, destination, live, max_bytes, account
                )
                await self._insert(job_id, request, owner, source_api, destination_api)
        except BaseException:
            _close(held)
            raise
        self._live[job_id] = live
        self._task_group.start_soon(self._run, job_id, request.kind, work, live)
        return await self.get(job_id)

    async def _check_notebook_job(self, request: NewJob, guard: Guard | None) -> Path:
        """Check an export or run request; returns the notebook's real path."""
        if request.kind == "export":
            if request.format not in EXPORT_FORMATS:
                raise BadRequest(
                    f"unknown export format {str(request.format)[:100]!r}; "
                    f"one of: {', '.join(EXPORT_FORMATS)}"
                )
        elif request.to is None:
            raise BadRequest("a run job needs 'to', the notebook to write with the outputs")
        check_available(request.kind)
        if request.kernel_name is not None:
            await anyio.to_thread.run_sync(check_kernel_name, request.kernel_name)
        return await anyio.to_thread.run_sync(resolve_notebook, self._root, request.path, guard)

    def _work(
        self,
        job_id: str,
        request: NewJob,
        source: Path,
        source_api: str,
        destination: Path | None,
        live: _Live,
        max_bytes: int | None,
        account: RunAs | None,
    ) -> Callable[[], Awaitable[dict[str, Any]]]:
        """What runs once the job has a slot: a function of a worker thread or process."""
        reporter = live.reporter
        if request.kind == "zip":

            async def work() -> dict[str, Any]:
                await anyio.to_thread.run_sync(_private_directory, self.directory)
                result = await anyio.to_thread.run_sync(
                    lambda: write_zip(
                        source,
                        self._archive(job_id),
                        reporter,
                        include_hidden=self._include_hidden,
                        max_bytes=max_bytes,
                    )
                )
                result["name"] = _download_name(source_api)
                return result

        elif request.kind == "copy":
            assert destination is not None

            async def work() -> dict[str, Any]:
                return await anyio.to_thread.run_sync(
                    lambda: copy_folder(
                        source,
                        destination,
                        reporter,
                        include_hidden=self._include_hidden,
                        job_id=job_id,
                    )
                )

        else:
            target = destination or self._stored(job_id, "export")
            order = {
                "kind": request.kind,
                "source": str(source),
                "target": str(target),
                "partial": str(partial_name(target, job_id)),
                "store": destination is None,
                "overwrite": request.overwrite,
                "format": request.format,
                "kernel_name": request.kernel_name,
                "timeout": request.timeout,
            }
            # Whatever writes under the root runs as the user's account (the server's own
            # for an export kept for download: it writes in the server's private directory).
            worker_account = account if destination is not None else None

            async def work() -> dict[str, Any]:
                if destination is None:
                    await anyio.to_thread.run_sync(_private_directory, self.directory)
                result = await run_worker(order, reporter, account=worker_account)
                if destination is None:
                    size = (await anyio.to_thread.run_sync(target.stat)).st_size
                    result["size"] = reporter.done = reporter.total = size
                return result

        return work

    async def _check_quota(self, owner: str, kind: str, *, stores: bool) -> int | None:
        """Refuse a job past the owner's quota; returns the bytes left to it. ``stores``: the
        job keeps a file for download (a zip, an export without ``to``)."""
        mine = JOBS_TABLE.c.owner == owner
        async with self._database.session() as session:
            rows = (
                await session.execute(
                    select(JOBS_TABLE.c.kind, JOBS_TABLE.c.status, JOBS_TABLE.c.result).where(mine)
                )
            ).all()
        if self._max_jobs is not None and len(rows) >= self._max_jobs:
            raise Forbidden(
                f"Resource Limit: {owner} has {len(rows)} jobs, the most allowed "
                "(jobs.max_jobs_per_user); discard ended ones first "
                "(DELETE /api/jobs/{id}?discard=true)",
                reason="Resource Limit",
            )
        if kind not in _STORED or not stores or self._max_bytes is None:
            return None
        stored = 0
        for row in rows:
            if row.kind in _STORED and row.status == "completed" and row.result:
                result = orjson.loads(row.result)
                if "url" in result:  # kept for download
                    stored += int(result.get("size", 0))
        if stored >= self._max_bytes:
            raise Forbidden(
                f"Resource Limit: {owner}'s archives hold {stored} bytes, the most allowed "
                "(jobs.max_bytes_per_user); discard some first",
                reason="Resource Limit",
            )
        return self._max_bytes - stored

    async def _insert(
        self, job_id: str, request: NewJob, owner: str, path: str, destination: str | None
    ) -> None:
        now = time.time()
        async with self._database.session() as session:
            await session.execute(
                insert(JOBS_TABLE).values(
                    id=job_id,
                    seq=time.time_ns(),
                    owner=owner,
                    kind=request.kind,
                    status="pending",
                    path=path,
                    destination=destination,
                    created=now,
                    updated=now,
                    done=0,
                    total=None,
                    server=self.server,
                    heartbeat=now,
                    cancel=False,
                )
            )

    async def get(self, job_id: str, owner: str | None = None) -> Job:
        """The job now."""
        async with self._database.session() as session:
            query = select(JOBS_TABLE).where(JOBS_TABLE.c.id == job_id)
            row = (await session.execute(query)).first()
        if row is None or (owner is not None and row.owner != owner):
            raise JobNotFound(job_id)
        return self._model(row)

    async def list(self, owner: str | None = None) -> list[Job]:
        """Jobs, newest first."""
        query = select(JOBS_TABLE).order_by(JOBS_TABLE.c.seq.desc())
        if owner is not None:
            query = query.where(JOBS_TABLE.c.owner == owner)
        async with self._database.session() as session:
            rows = (await session.execute(query)).all()
        return [self._model(row) for row in rows]

    async def cancel(self, job_id: str, owner: str | None = None) -> Job:
        """Stop a pending or running job; returns it once it has stopped."""
        job = await self.get(job_id, owner)
        if job.status in FINISHED:
            raise JobFinished(job)
        live = self._live.get(job_id)
        if live is not None:
            live.reporter.cancel()
            live.waiting.cancel()
            await live.finished.wait()
            return await self.get(job_id)
        # Another server runs it: ask through the database, and wait for its answer.
        async with self._database.session() as session:
            await session.execute(
                update(JOBS_TABLE).where(JOBS_TABLE.c.id == job_id).values(cancel=True)
            )
        with anyio.move_on_after(_CANCEL_WAIT):
            while job.status not in FINISHED:
                await anyio.sleep(0.1)
                job = await self.get(job_id)
        return job

    async def discard(self, job_id: str, owner: str | None = None) -> None:
        """Forget the job and delete its archive, cancelling it first if it still runs."""
        job = await self.get(job_id, owner)
        if job.status not in FINISHED:
            job = await self.cancel(job_id, owner)
            if job.status not in FINISHED:
                raise Conflict(f"Job {job_id} is still stopping; try again")
        async with self._database.session() as session:
            await session.execute(delete(JOBS_TABLE).where(JOBS_TABLE.c.id == job_id))
        await anyio.to_thread.run_sync(self._unlink_stored, job_id)

    async def watch(self, job_id: str, owner: str | None = None) -> AsyncIterator[Job]:
        """The job now, then at each change (at most every 0.1 s while it runs)."""
        job = await self.get(job_id, owner)
        yield job
        while job.status not in FINISHED:
            live = self._live.get(job_id)
            if live is not None:
                with anyio.move_on_after(15):
                    await live.changed.wait()
            else:  # another server runs it: its heartbeats update the row
                await anyio.sleep(min(HEARTBEAT, 1.0))
            job = await self.get(job_id)
            yield job

    async def result_file(self, job_id: str, owner: str | None = None) -> ResultFile:
        """The file a completed zip job (or export without ``to``) keeps for download."""
        job = await self.get(job_id, owner)
        result = job.result or {}
        if job.kind not in _STORED or job.status != "completed" or "url" not in result:
            raise NoResult(f"Job {job_id} has no file to download ({job.status})")
        path = self._stored(job_id, job.kind)
        if not path.is_file():
            raise NoResult(f"The file of job {job_id} is gone")
        if job.kind == "zip":
            return ResultFile(path, _download_name(job.path), "application/zip")
        return ResultFile(path, str(result["name"]), str(result["media_type"]))

    # -- running ------------------------------------------------------------------------------

    def _destination(self, to: str | None, guard: Guard | None) -> tuple[Held, str]:
        """The folder a copy is made in, open and judged for writing its new entry, and the
        entry's name. Blocking: call it from a worker thread."""
        if not to:
            raise BadRequest("a copy job needs 'to', the new folder's path")
        parts = api_parts(to)
        if not parts:
            raise BadRequest(f"invalid path: {to!r}")
        name = parts[-1]
        shown = to.strip("/")
        parent = open_folder(
            self._root, "/".join(parts[:-1]), guard, action="write", entry=name, shown=shown
        )
        try:
            os.stat(name, dir_fd=parent.fd, follow_symlinks=False)
        except FileNotFoundError:
            return parent, name
        except BaseException:
            os.close(parent.fd)
            raise
        os.close(parent.fd)
        raise Conflict(f"{to} already exists")

    def _archive(self, job_id: str) -> Path:
        return self._stored(job_id, "zip")

    def _stored(self, job_id: str, kind: str) -> Path:
        return self.directory / f"{job_id}{_STORED[kind]}"

    async def _run(
        self,
        job_id: str,
        kind: str,
        work: Callable[[], Awaitable[dict[str, Any]]],
        live: _Live,
    ) -> None:
        try:
            with live.waiting:
                await self._slots.acquire()
            if live.waiting.cancelled_caught:
                raise Cancelled
            try:
                live.reporter.check()
                live.started = True
                await self._record(job_id, live, status="running")
                failure: Exception | None = None
                async with anyio.create_task_group() as watchers:
                    watchers.start_soon(self._pulse, live)
                    try:
                        result = await work()
                    except Exception as exc:  # raised below, outside the group (no wrapping)
                        failure = exc
                    finally:
                        live.work_done = True
                        watchers.cancel_scope.cancel()
                if failure is not None:
                    raise failure
            finally:
                self._slots.release()
            if kind == "zip" or "media_type" in result:  # a file kept for download
                result["url"] = f"{self._base_url}api/jobs/{job_id}/result"
            await self._record(job_id, live, status="completed", result=result)
        except Cancelled:
            reason = STOPPED if live.cancelling else "cancelled"
            status = "failed" if live.cancelling else "cancelled"
            await self._finish(job_id, live, status, reason)
        except FolderChanged as exc:
            await self._finish(
                job_id, live, "failed", f"the folder changed while the job ran: {exc}"
            )
        except (FileExistsError, TooDeep, TooLarge, UnportableName, WorkerFailed) as exc:
            await self._finish(job_id, live, "failed", str(exc))
        except OSError as exc:
            await self._finish(
                job_id, live, "failed", f"{exc.strerror or exc}: {exc.filename or ''}"
            )
        except Exception:
            log.exception("job %s failed", job_id)
            await self._finish(job_id, live, "failed", "internal error; see the server log")
        finally:
            _close(live.held)
            live.finished.set()
            live.notify()
            self._live.pop(job_id, None)

    async def _pulse(self, live: _Live) -> None:
        """Wake watchers while the worker makes progress (the thread cannot, cheaply).

        A worker thread cannot be cancelled, so when the job's task is (the server's task
        group stopping), this asks the worker to stop at its next chunk; otherwise the task
        would wait for the whole folder to be read.
        """
        seen = -1
        try:
            while True:
                await anyio.sleep(0.1)
                if live.reporter.done != seen:
                    seen = live.reporter.done
                    live.notify()
        except anyio.get_cancelled_exc_class():
            if not live.work_done:
                live.reporter.cancel()
            raise

    async def _finish(self, job_id: str, live: _Live, status: str, error: str) -> None:
        with anyio.CancelScope(shield=True):
            try:
                await self._record(job_id, live, status=status, error=error)
            except Exception:
                log.exception("job %s: could not record its end (%s)", job_id, status)

    async def _record(
        self,
        job_id: str,
        live: _Live,
        *,
        status: str,
        error: str | None = None,
        result: dict[str, Any] | None = None,
    ) -> None:
        now = time.time()
        values: dict[str, Any] = {
            "status": status,
            "updated": now,
            "heartbeat": now,
            "done": live.reporter.done,
            "total": live.reporter.total,
            "error": error,
        }
        if result is not None:
            values["result"] = orjson.dumps(result).decode()
        async with self._database.session() as session:
            await session.execute(
                update(JOBS_TABLE).where(JOBS_TABLE.c.id == job_id).values(**values)
            )
        live.notify()

    def _model(self, row: Row[Any]) -> Job:
        live = self._live.get(row.id)
        done, total = row.done, row.total
        if live is not None and row.status == "running":
            done, total = live.reporter.done, live.reporter.total
        return Job(
            id=row.id,
            kind=row.kind,
            status=row.status,
            path=row.path,
            to=row.destination,
            created=_iso(row.created),
            updated=_iso(row.updated),
            progress=Progress(
                done=done, total=total, unit="cells" if row.kind == "run" else "bytes"
            ),
            error=row.error,
            result=orjson.loads(row.result) if row.result else None,
        )


def _host() -> str:
    """This host, and its pid namespace where there is one: a (host, pid) pair names one
    live process even when containers share the host's name."""
    try:
        namespace = os.readlink("/proc/self/ns/pid")
    except OSError:
        namespace = ""
    return f"{socket.gethostname()}/{namespace}"


def _private_directory(directory: Path) -> None:
    """Create the archives' directory readable by the server's account alone (0700), and
    tighten one made before with group or other bits."""
    directory.mkdir(mode=0o700, parents=True, exist_ok=True)
    info = directory.stat()
    if info.st_uid == os.getuid() and info.st_mode & 0o077:
        directory.chmod(0o700)


def _close(descriptors: list[int]) -> None:
    """Close a job's descriptors, once."""
    while descriptors:
        with contextlib.suppress(OSError):
            os.close(descriptors.pop())


def _alive(pid: int) -> bool:
    """Whether a process with this id runs on this host."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _api_path(root: Path, path: Path) -> str:
    return path.relative_to(root).as_posix() if path != root else ""


def _download_name(api_path: str) -> str:
    return (PurePosixPath(api_path).name or "root") + ".zip"
