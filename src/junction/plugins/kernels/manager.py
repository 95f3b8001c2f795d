"""``JupyterClientKernels``: the kernels service over jupyter_client, and its housekeeping.

It keeps the clients' kernels by id, starts them from specs the kernelspecs service
resolves (``force_kernel_name`` overriding the client's choice), seeds them
(:mod:`~junction.plugins.kernels.seeding`), enforces ``max_kernels``, hands out prespawned
kernels (:mod:`~junction.plugins.kernels.pool`), and runs background loops in the server's
task group:

- the monitor, every ``monitor_interval``: restarts kernels whose process died, replaces
  pool kernels that died, and forgets WebSocket clients whose reconnect window passed;
- the culler, every ``cull_interval`` when ``cull_idle_timeout`` is set: shuts down kernels
  idle for longer (unless connected or busy, per ``cull_connected`` and ``cull_busy``);
  clients attached through other servers, and their messages, count (from the records, as
  of the last heartbeat);
- the pool's refill, when ``prespawn_count`` is set.

``max_kernels`` bounds the clients' kernels. Pool kernels fill the room left: the pool holds
at most ``max_kernels`` minus the clients' kernels, and a start the pool cannot serve stops a
pool kernel first when all the room is taken; so there are never more kernel processes than
``max_kernels``, and pool kernels never cost a client a kernel.

At server exit every kernel, pool kernels included, is shut down (concurrently, each bounded
by ``shutdown_wait_time``); a reaper process kills any the server could not stop (see
:mod:`junction.reaper`, the core's :data:`~junction.services.REAPER`).

Every client kernel has a record in the database (:mod:`~junction.plugins.kernels.records`),
renewed every sixth of ``lease_timeout``. With
``keep_on_shutdown`` the server leaves its kernels running when it stops; at startup, and at
every heartbeat, it takes over (claims, verifies, reattaches) the kernels whose server is
gone, with the same ids, and forgets the records of kernels that no longer answer. A kernel
whose record another process took over is let go without stopping it.

A restart of a kernel another server runs is asked of that server through the kernel's
record (``restart_requested``; a PostgreSQL notification wakes it at once, else it sees the
request at its next heartbeat); it restarts the kernel as for a local request and records it
done (``restarted``), and the asking server then answers with the model. When it refuses (a
conflict: the kernel is shutting down, or cannot be launched again by this server), it
records why (``restart_refused``) and the asking server answers the same 409. When the
running server is gone, whoever adopts the kernel carries the request out.
"""

from __future__ import annotations

import contextlib
import fnmatch
import logging
import os
import re
import time
import uuid
from collections.abc import AsyncIterator, Callable, Sequence
from datetime import UTC, datetime
from pathlib import Path, PurePosixPath
from types import TracebackType
from typing import Any

import anyio
import anyio.abc
import zmq.asyncio
from jupyter_core.paths import jupyter_runtime_dir

from junction.auth.identity import Authenticator
from junction.childenv import child_environment, run_as
from junction.errors import BadRequest, Conflict, Forbidden, ServiceUnavailable
from junction.plugins.kernels.connection import GOING_AWAY, NORMAL, SERVICE_RESTART
from junction.plugins.kernels.hub import KernelHub
from junction.plugins.kernels.kernel import KernelRuntime, ManagedKernel
from junction.plugins.kernels.metrics import WireStats
from junction.plugins.kernels.models import Kernel
from junction.plugins.kernels.notices import RestartNotices
from junction.plugins.kernels.pool import KernelPool, PoolEntry
from junction.plugins.kernels.records import (
    KernelRecord,
    KernelRecords,
    same_host,
    server_gone,
)
from junction.plugins.kernels.remote import RemoteKernel, record_model
from junction.plugins.kernels.seeding import SeedNotebook
from junction.plugins.kernels.service import KernelNotFound, KernelStartFailed
from junction.plugins.kernels.settings import KernelsSettings
from junction.plugins.kernels.slots import SlotLimits
from junction.plugins.kernelspecs.service import (
    InstalledKernelSpec,
    KernelSpecNotFound,
    KernelSpecService,
)
from junction.reaper import Reaper

__all__ = ["JupyterClientKernels", "check_env", "should_cull"]

log = logging.getLogger("junction.kernels")
_RECONNECT = "the server is stopping; the kernel keeps running, reconnect"

_UUID = re.compile(r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}")


class JupyterClientKernels:
    """Implements :class:`~junction.plugins.kernels.service.KernelService`.

    An async context manager: entering starts the background loops in
    ``task_group``; exiting shuts every kernel down.
    """

    def __init__(
        self,
        settings: KernelsSettings,
        *,
        specs: KernelSpecService,
        root_dir: Path,
        base_url: str,
        task_group: anyio.abc.TaskGroup,
        reaper: Reaper,
        max_message_size: int,
        seed: SeedNotebook | None = None,
        records: KernelRecords | None = None,
        auth: Authenticator | None = None,
    ) -> None:
        self.settings = settings
        self.seed = seed
        self.specs = specs
        self.root_dir = root_dir
        self.base_url = base_url
        self.max_message_size = settings.max_message_size or max_message_size
        self._task_group = task_group
        self._kernels: dict[str, ManagedKernel] = {}
        self.wire_stats = WireStats()
        self._context = zmq.asyncio.Context()
        self._reaper = reaper
        self._runtime: KernelRuntime | None = None
        self._loops = anyio.CancelScope()
        self.records = records
        self._auth = auth
        self._recorded: set[str] = set()
        self._adopting: set[str] = set()
        self._remote: dict[str, RemoteKernel] = {}
        self._known: set[str] = set()
        self._serving: set[str] = set()
        self._clients_elsewhere: dict[str, float] = {}
        """Until when, per kernel of this server, WebSocket clients are attached to it
        through other servers (from the records, for the culler)."""
        self._wake = anyio.Event()
        """Set when a restart may have been asked of this server (a notification, an adoption)."""
        self.pool = KernelPool(
            create=self._create_pool_kernel,
            launch=self._launch_pool_kernel,
            capacity=self._pool_capacity,
            task_group=task_group,
        )

    async def __aenter__(self) -> JupyterClientKernels:
        connection_dir = Path(await anyio.to_thread.run_sync(_runtime_dir))
        self._runtime = KernelRuntime(
            settings=self.settings,
            context=self._context,
            task_group=self._task_group,
            reaper=self._reaper,
            connection_dir=connection_dir,
            relaunched=self._save,
        )
        if self.settings.keep_on_shutdown:
            self._reaper.set_orphan_grace(self.settings.orphan_grace)
        if self.records is not None:
            began = time.monotonic()
            try:
                adopted = await self._adopt()
            except Exception as exc:  # the database may be away: serve anyway
                log.warning("kernels left by earlier servers were not looked for: %s", exc)
            else:
                if adopted:
                    log.info(
                        "reattached %d kernels left by earlier servers in %.2f s",
                        adopted,
                        time.monotonic() - began,
                    )
        self._task_group.start_soon(self._run_loops)
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self._loops.cancel()
        try:
            async with anyio.create_task_group() as group:
                for kernel in self.pool.discard_all():
                    group.start_soon(self._stop, kernel, GOING_AWAY, "the server is stopping")
                for kernel in list(self._kernels.values()):
                    if self._keeps(kernel):
                        group.start_soon(self._detach, kernel)
                    else:
                        group.start_soon(self._stop, kernel, GOING_AWAY, "the server is stopping")
                for remote in self._remote.values():  # kernels of other servers live on
                    group.start_soon(remote.close, SERVICE_RESTART, _RECONNECT)
                self._remote.clear()
        finally:
            self._context.destroy(linger=0)

    # -- the KernelService Protocol -----------------------------------------------------------

    async def start(
        self,
        *,
        name: str | None = None,
        path: str | None = None,
        env: dict[str, str] | None = None,
        kernel_id: str | None = None,
        owner: str | None = None,
    ) -> Kernel:
        """Start a kernel and wait until it answers (and ran the seed); see the Protocol.

        ``owner`` (a username) goes into the kernel's record, so a server that reattaches
        the kernel knows whose it is.

        A ``kernel_id`` that is already running returns that kernel. A start the pool can
        serve (see :meth:`_poolable`) gets a prespawned kernel. Raises ``KernelSpecNotFound``,
        ``KernelStartFailed`` (``KernelSeedFailed``), ``BadRequest`` (bad id or path) or
        ``Forbidden`` (``max_kernels`` reached).
        """
        if kernel_id is not None:
            kernel_id = _check_kernel_id(kernel_id)
            existing = self._kernels.get(kernel_id)
            if existing is not None:
                return existing.model()
        spec = await self.specs.find(self.spec_name(name))
        cwd = await self._cwd_for(path)
        account = await run_as()
        assert self._runtime is not None, "start() before the plugin started"
        # No await from this check to the registration below: concurrent starts count.
        limit = self.settings.max_kernels
        if limit is not None and len(self._kernels) >= limit:
            raise Forbidden(
                f"Resource Limit: {limit} kernels are running, the most allowed "
                "(kernels.max_kernels); shut one down first",
                reason="Resource Limit",
            )
        if kernel_id is not None and kernel_id in self._kernels:
            return self._kernels[kernel_id].model()
        if account is None and self._poolable(kernel_id=kernel_id, cwd=cwd, env=env):
            entry = self.pool.take(spec.name)
            if entry is not None:
                model = await self._hand_out(entry)
                await self._save(entry.kernel, owner=owner)
                return model
        kernel = ManagedKernel(kernel_id or str(uuid.uuid4()), spec, self._runtime)
        self._kernels[kernel.id] = kernel
        evicted = self.pool.evict() if self._room() < 0 else None
        try:
            if evicted is not None:
                await self._stop(evicted, GOING_AWAY, "the pool made room", now=True)
            env = {
                **child_environment(),
                **(account.environment() if account else {}),
                **(env or {}),
            }
            await kernel.start(cwd=cwd, env=env, seed=self._seed_for(spec), account=account)
        except BaseException:
            self._kernels.pop(kernel.id, None)
            self.pool.changed()
            raise
        await self._save(kernel, owner=owner)
        return kernel.model()

    def spec_name(self, requested: str | None) -> str:
        """The spec a start asking for ``requested`` gets (``force_kernel_name`` wins)."""
        return self.settings.force_kernel_name or requested or self.settings.default_kernel_name

    async def get(self, kernel_id: str) -> Kernel:
        """The model of a kernel, this server's or another's; raises :class:`KernelNotFound`."""
        kernel = self._kernels.get(kernel_id)
        if kernel is not None:
            return kernel.model()
        return (await self._remote_kernel(kernel_id)).model()

    async def list(self) -> list[Kernel]:
        """Every kernel, in start order: this server's, then those of the other servers
        sharing the database."""
        models = [kernel.model() for kernel in self._kernels.values()]
        if self.records is None:
            return models
        try:
            records = await self.records.all()
        except Exception as exc:  # the database may be away: this server's kernels only
            log.warning("kernels of other servers are not listed: %s", exc)
            return models
        self._known = {record.id for record in records}
        for record in records:
            mine = record.server == self.records.server and record.id not in self._adopting
            if record.id in self._kernels or mine:  # a kernel being adopted is listed meanwhile
                continue
            remote = self._remote.get(record.id)
            if remote is not None:
                remote.record = record
                models.append(remote.model())
            else:
                models.append(record_model(record))
        return models

    def exists(self, kernel_id: str) -> bool:
        """Whether the kernel is known (starting, running, restarting or dead), here or, as
        of the last look at the database, on another server."""
        return kernel_id in self._kernels or kernel_id in self._remote or kernel_id in self._known

    async def shutdown(self, kernel_id: str) -> None:
        """Shut a kernel down and forget it; its WebSockets close with 1000.

        A kernel of another server is sent ``shutdown_request`` over control, and its record
        asks that server to stop it (it does at once when the process exits); this returns
        once the record is gone, or after ``shutdown_wait_time`` plus a heartbeat.
        """
        kernel = self._kernels.get(kernel_id)
        if kernel is not None:
            await self._stop(kernel, NORMAL, "the kernel was shut down")
            return
        remote = await self._remote_kernel(kernel_id)
        assert self.records is not None
        await self.records.request_stop(kernel_id)
        await remote.request_shutdown(self._task_group)
        with anyio.move_on_after(self.settings.shutdown_wait_time + self._heartbeat_every + 2):
            while await self.records.get(kernel_id) is not None:  # noqa: ASYNC110 - polls the database
                await anyio.sleep(0.1)
        if self._remote.get(kernel_id) is remote:
            del self._remote[kernel_id]
        self._known.discard(kernel_id)
        await remote.close(NORMAL, "the kernel was shut down")

    async def interrupt(self, kernel_id: str) -> None:
        """Interrupt per the spec's interrupt mode (signal or interrupt_request); a kernel
        of another server gets ``interrupt_request`` on its control channel."""
        kernel = self._kernels.get(kernel_id)
        if kernel is not None:
            await kernel.interrupt()
            return
        await (await self._remote_kernel(kernel_id)).interrupt(self._task_group)

    async def restart(self, kernel_id: str) -> Kernel:
        """Restart in place and wait until the new process answers.

        A kernel of another server is restarted by that server (its process is that
        server's to replace): the request goes through the kernel's record, and this waits
        up to ``remote_restart_timeout`` for it to be done, then reconnects this server's
        sockets to the new process. Raises ``ServiceUnavailable`` when it was not done in
        time (the request stands), ``KernelStartFailed`` when the new process did not start,
        ``Conflict`` when the kernel cannot be restarted now (here or on its server).
        """
        kernel = self._kernels.get(kernel_id)
        if kernel is None:
            return await self._restart_remote(await self._remote_kernel(kernel_id))
        await kernel.restart()
        return kernel.model()

    async def execute(
        self, kernel_id: str, code: str, on_output: Callable[[str, dict[str, Any]], None]
    ) -> dict[str, Any]:
        """Run ``code`` as a server-side client (see ``KernelService.execute``)."""
        async with self.hub_for(kernel_id) as hub:
            return await hub.execute(code, on_output)

    @contextlib.asynccontextmanager
    async def hub_for(self, kernel_id: str) -> AsyncIterator[KernelHub]:
        """The hub clients of ``kernel_id`` attach to, for the block: this server's
        kernel's, or this server's own sockets to a kernel of another server, which stay open
        while the block runs. Raises :class:`KernelNotFound`, or ``ServiceUnavailable`` when
        the other server's kernel does not answer."""
        kernel = self._kernels.get(kernel_id)
        if kernel is not None:
            yield kernel.hub
            return
        remote = await self._remote_kernel(kernel_id)
        async with remote.in_use(self._task_group, self.settings.reattach_timeout) as hub:
            yield hub

    async def learn_owner(self, kernel_id: str) -> None:
        """Make sure the owner of a kernel of another server is known (for authorization)."""
        if kernel_id in self._kernels or self.records is None or self._auth is None:
            return
        if ("kernels", kernel_id) in self._auth.owners:
            return
        with contextlib.suppress(Exception):
            record = await self.records.get(kernel_id)
            if record is not None and record.owner is not None:
                self._auth.owners[("kernels", kernel_id)] = record.owner

    async def _remote_kernel(self, kernel_id: str) -> RemoteKernel:
        """The kernel of another server with this id; raises :class:`KernelNotFound`."""
        if self.records is None:
            raise KernelNotFound(kernel_id)
        record = await self.records.get(kernel_id)
        if record is None or (
            record.server == self.records.server and kernel_id not in self._adopting
        ):
            raise KernelNotFound(kernel_id)
        remote = self._remote.get(kernel_id)
        if remote is None:
            limits = SlotLimits(
                client_queue_bytes=self.settings.client_queue_bytes,
                replay_buffer_bytes=self.settings.replay_buffer_bytes,
            )
            remote = self._remote[kernel_id] = RemoteKernel(record, self._context, limits)
        else:
            remote.record = record
        if record.owner is not None and self._auth is not None:
            self._auth.owners[("kernels", kernel_id)] = record.owner
        return remote

    async def _restart_remote(self, remote: RemoteKernel) -> Kernel:
        """Ask the server running ``remote`` to restart it and wait until it did."""
        assert self.records is not None
        kernel_id = remote.id
        number = await self.records.request_restart(kernel_id)
        if number is None:
            raise KernelNotFound(kernel_id)
        timeout = self.settings.remote_restart_timeout
        state = "idle"
        with anyio.move_on_after(timeout) as waiting:
            while True:
                progress = await self.records.restart_progress(kernel_id)
                if progress is None:
                    raise KernelNotFound(kernel_id)
                if progress.restarted >= number:
                    refusal = progress.refusal(number)
                    if refusal is not None:
                        raise Conflict(refusal)
                    state = progress.execution_state
                    break
                if progress.server == self.records.server:
                    self._wake.set()  # adopted here meanwhile: this server does it
                await anyio.sleep(0.1)
        if waiting.cancelled_caught:
            raise ServiceUnavailable(
                f"Kernel {kernel_id} runs on another server ({remote.record.server}), which "
                f"did not restart it within {timeout:g} s (kernels.remote_restart_timeout); "
                "the request stands: it restarts the kernel when it can, or the server that "
                "adopts the kernel does",
                reason="Kernel restart timed out",
            )
        local = self._kernels.get(kernel_id)
        if local is not None:  # this server adopted the kernel and restarted it
            return local.model()
        if state == "dead":
            raise KernelStartFailed(f"Kernel {kernel_id} failed to restart on its server")
        remote = await self._remote_kernel(kernel_id)
        if remote.hub.connected:  # clients are attached here: to the new process
            remote.hub.fail_pending("The kernel was restarted")
            await remote.connect(self._task_group, self.settings.reattach_timeout, again=True)
        return remote.model()

    async def _serve_restarts(self) -> None:
        """Restart the kernels of this server other servers asked to restart."""
        assert self.records is not None
        for kernel_id, number in (await self.records.restart_requests()).items():
            kernel = self._kernels.get(kernel_id)
            if kernel is None or kernel_id in self._serving or kernel_id in self._adopting:
                continue
            self._serving.add(kernel_id)
            self._task_group.start_soon(self._serve_restart, kernel, number)

    async def _serve_restart(self, kernel: ManagedKernel, number: int) -> None:
        """Restart ``kernel`` as asked by another server, then record request ``number``
        (and those before it) done, or refused with the message a local request gets."""
        assert self.records is not None
        try:
            refused: str | None = None
            if kernel.phase == "stopping":
                # Refused now, not once the shutdown lets go of the kernel: its record, where
                # the answer goes, goes with it.
                refused = f"Kernel {kernel.id} is shutting down"
            else:
                log.info("kernel %s: restarting it, as another server asked", kernel.id)
                try:
                    await kernel.restart()
                except Conflict as exc:
                    refused = exc.message
                except Exception as exc:
                    log.warning(
                        "kernel %s: the restart another server asked for failed: %s",
                        kernel.id,
                        exc,
                    )
            if refused is not None and self._loops.cancel_called:
                return  # this server is stopping: the request stands, for whoever adopts it
            alive = kernel.phase == "running" or refused is not None  # a refusal changes nothing
            state = kernel.hub.execution_state if alive else "dead"
            await self.records.mark_restarted(kernel.id, number, state, refused=refused)
            if refused is not None:
                log.info("kernel %s: restart %d refused: %s", kernel.id, number, refused)
            else:
                log.info("kernel %s: restart %d done (%s)", kernel.id, number, state)
        except Exception as exc:  # the database may be away: the request is served again
            log.warning("kernel %s: the restart was not recorded: %s", kernel.id, exc)
        finally:
            self._serving.discard(kernel.id)

    async def _restarts_loop(self) -> None:
        """Serve restart requests when woken (a notification, an adoption) and at every
        heartbeat (for SQLite, and for notifications missed)."""
        while True:
            with anyio.move_on_after(self._heartbeat_every):
                await self._wake.wait()
            self._wake = anyio.Event()
            try:
                await self._serve_restarts()
            except Exception as exc:  # the database may be away for a while
                log.warning("kernels: restart requests were not looked for: %s", exc)

    def _woken(self, _kernel_id: str | None) -> None:
        self._wake.set()

    async def _refresh_remotes(self, records: Sequence[KernelRecord]) -> None:
        """Follow the records of the kernels of other servers this server has sockets to."""
        assert self.records is not None
        by_id = {record.id: record for record in records}
        for kernel_id, remote in list(self._remote.items()):
            record = by_id.get(kernel_id)
            if record is not None:
                # Also once this server adopted the kernel: its clients keep these sockets
                # (and the replies to requests sent through them) until they leave; new
                # WebSockets attach to the adopted kernel.
                remote.record = record
                remote.hub.expire(self.settings.reconnect_window)
                if remote.needed or kernel_id in self._adopting:
                    continue
                reason = "nobody is attached"
            else:
                reason = "the kernel was shut down"
            del self._remote[kernel_id]
            code = NORMAL if record is None else GOING_AWAY
            await remote.close(code, reason)

    # -- for the routes and the core ----------------------------------------------------------

    def kernel(self, kernel_id: str) -> ManagedKernel:
        """The managed kernel; raises :class:`KernelNotFound`."""
        try:
            return self._kernels[kernel_id]
        except KeyError:
            raise KernelNotFound(kernel_id) from None

    def check_env(self, env: dict[str, str] | None) -> None:
        """Refuse client-supplied environment variables outside ``allowed_env`` (400)."""
        check_env(env, self.settings.allowed_env)

    def kernel_count(self) -> int:
        """Gauge ``kernels``."""
        return len(self._kernels)

    def managed(self) -> tuple[ManagedKernel, ...]:
        """The kernels this server holds (the pool's are apart), for metrics."""
        return tuple(self._kernels.values())

    def connection_count(self) -> int:
        """Gauge ``connections``: WebSockets attached to any kernel."""
        return sum(kernel.hub.connections for kernel in self._kernels.values())

    def last_activity(self) -> datetime | None:
        """The latest kernel activity (output, execution), for ``/api/status`` and culling."""
        if not self._kernels:
            return None
        latest = max(kernel.hub.last_activity for kernel in self._kernels.values())
        return datetime.fromtimestamp(latest, UTC)

    # -- helpers ------------------------------------------------------------------------------

    async def _stop(
        self, kernel: ManagedKernel, code: int, reason: str, *, now: bool = False
    ) -> None:
        try:
            await kernel.shutdown(code=code, reason=reason, now=now)
        finally:
            if self._kernels.get(kernel.id) is kernel:
                del self._kernels[kernel.id]
                self.pool.changed()
            await self._forget(kernel.id)

    # -- records: outliving the server ----------------------------------------------------------

    async def _detach(self, kernel: ManagedKernel) -> None:
        # 1012, not 1001: the kernel keeps running, and JupyterLab's client reconnects only
        # after a close code other than 1000 and 1001.
        await kernel.detach(code=SERVICE_RESTART, reason=_RECONNECT)

    @property
    def _heartbeat_every(self) -> float:
        return self.settings.lease_timeout / 6

    def _keeps(self, kernel: ManagedKernel) -> bool:
        """Whether server exit leaves ``kernel`` running (``keep_on_shutdown``)."""
        return (
            self.settings.keep_on_shutdown
            and kernel.phase == "running"
            and kernel.id in self._recorded
        )

    def _owner(self, kernel_id: str) -> str | None:
        if self._auth is None:
            return None
        return self._auth.owners.get(("kernels", kernel_id))

    async def _save(self, kernel: ManagedKernel, *, owner: str | None = None) -> None:
        """Write the kernel's record (after a start, a hand-out, a restart)."""
        if self.records is None or self._kernels.get(kernel.id) is not kernel:
            return
        record = await kernel.record()
        record.owner = owner or self._owner(kernel.id)
        try:
            await self.records.save(record)
        except Exception as exc:  # the kernel runs; the next heartbeat writes it again
            log.warning("kernel %s: its record was not saved: %s", kernel.id, exc)
            self._recorded.discard(kernel.id)
            return
        self._recorded.add(kernel.id)

    async def _forget(self, kernel_id: str) -> None:
        self._recorded.discard(kernel_id)
        if self.records is None:
            return
        try:
            await self.records.remove(kernel_id)
        except Exception as exc:
            log.warning("kernel %s: its record was not removed: %s", kernel_id, exc)

    async def _adopt(self) -> int:
        """Reattach the kernels whose server is gone; returns how many now run here."""
        assert self.records is not None
        now = time.time()
        records = await self.records.all()
        self._known = {record.id for record in records}
        await self._refresh_remotes(records)
        found = [
            record
            for record in records
            if record.id not in self._kernels
            and record.id not in self._adopting
            and server_gone(
                record.server, record.heartbeat, now=now, stale=self.settings.lease_timeout
            )
        ]
        adopted = 0

        async def adopt(record: KernelRecord) -> None:
            nonlocal adopted
            self._adopting.add(record.id)
            try:
                if await self._adopt_one(record):
                    adopted += 1
            except Exception:
                log.exception("kernel %s: reattaching failed", record.id)
            finally:
                self._adopting.discard(record.id)

        async with anyio.create_task_group() as group:
            for record in found:
                group.start_soon(adopt, record)
        return adopted

    async def _adopt_one(self, record: KernelRecord) -> bool:
        assert self.records is not None
        assert self._runtime is not None
        previous = record.server
        if not _UUID.fullmatch(record.id):
            log.warning("kernel %r left by %s: not a kernel id; it is ignored", record.id, previous)
            return False
        if not await self.records.claim(record):
            return False  # another server was quicker
        if not record.provisioner.get("independent"):
            # Launched to die with its server (keep_on_shutdown was off there): it is gone,
            # or about to be (the reaper, the kernel's own parent watch).
            log.info(
                "kernel %s of %s, a server that stopped, was not kept "
                "(kernels.keep_on_shutdown); its record is forgotten",
                record.id,
                previous,
            )
            await self.records.remove(record.id)
            self._known.discard(record.id)
            return False
        try:
            spec = await self.specs.find(record.name)
        except KernelSpecNotFound:
            log.warning(
                "kernel %s left by %s: its spec %s is gone; its record is forgotten",
                record.id,
                previous,
                record.name,
            )
            await self.records.remove(record.id)
            return False
        kernel = ManagedKernel(record.id, spec, self._runtime)
        local = same_host(previous)
        if not await kernel.reattach(record, local=local, timeout=self.settings.reattach_timeout):
            log.warning(
                "kernel %s left by %s does not answer; its record is forgotten",
                record.id,
                previous,
            )
            await self.records.remove(record.id)
            self._known.discard(record.id)
            if local:
                with contextlib.suppress(OSError):
                    os.unlink(kernel.manager.connection_file)
            return False
        if record.id in self._kernels:  # a client started one with this id meanwhile
            await kernel.detach(code=GOING_AWAY, reason="a kernel with this id runs here")
            return False
        self._kernels[record.id] = kernel
        if record.stop:  # another server asked for it to stop meanwhile
            await self._stop(kernel, NORMAL, "the kernel was shut down")
            return False
        self.pool.changed()
        if record.owner is not None and self._auth is not None:
            self._auth.owners[("kernels", record.id)] = record.owner
        await self._save(kernel, owner=record.owner)
        self._wake.set()  # a restart asked of the gone server is this one's now
        return True

    async def _heartbeat(self) -> None:
        """Renew this server's records, act on stop requests and take-overs, adopt the
        kernels of gone servers."""
        assert self.records is not None
        kernels = {
            kernel.id: kernel
            for kernel in self._kernels.values()
            if kernel.phase == "running" and kernel.id not in self._adopting
        }
        states = {
            kernel_id: (
                kernel.hub.execution_state,
                kernel.hub.last_activity,
                self._owner(kernel_id),
            )
            for kernel_id, kernel in kernels.items()
        }
        taken, missing, stop = await self.records.beat(states)
        # Activity and clients seen through other servers count for this server's culler.
        for kernel_id, (activity, _) in self.records.renewed.items():
            if kernel_id in kernels:
                hub = kernels[kernel_id].hub
                hub.last_activity = max(hub.last_activity, activity)
        self._clients_elsewhere = {
            kernel_id: until for kernel_id, (_, until) in self.records.renewed.items()
        }
        for kernel_id in taken:
            lost = kernels[kernel_id]
            log.warning("kernel %s was taken over by another server; letting it go", kernel_id)
            if self._kernels.get(kernel_id) is lost:
                del self._kernels[kernel_id]
            self._recorded.discard(kernel_id)
            # 1012, not 1001: JupyterLab's client reconnects (to the kernel's new server).
            await lost.detach(
                code=SERVICE_RESTART, reason="another server took this kernel over; reconnect"
            )
        for kernel_id in missing:
            await self._save(kernels[kernel_id])
        for kernel_id in stop:
            stopping = self._kernels.get(kernel_id)
            if stopping is not None:
                await self._stop(stopping, NORMAL, "the kernel was shut down")
        # This server's clients of other servers' kernels count for those servers' cullers
        # (renewed every heartbeat, so they lapse a lease after the last client left).
        attached = {
            kernel_id: (remote.hub.client_activity, time.time() + self.settings.lease_timeout)
            for kernel_id, remote in self._remote.items()
            if remote.hub.connections
        }
        if attached:
            await self.records.report_clients(attached)
        await self._adopt()

    async def _records_loop(self) -> None:
        while True:
            await anyio.sleep(self._heartbeat_every)
            try:
                await self._heartbeat()
            except Exception as exc:  # the database may be away for a while
                log.warning("kernels heartbeat failed: %s", exc)

    async def _recover(self, kernel: ManagedKernel) -> None:
        """A kernel's process died: shut it down if another server asked for that (it sent
        the kernel a shutdown request), else restart it."""
        if self.records is not None:
            try:
                record = await self.records.get(kernel.id)
            except Exception:
                record = None
            if record is not None and record.server != self.records.server:
                # Another server took the kernel over (this one was frozen) and may have
                # restarted it: a new process here would compete with it. Let it go.
                if self._kernels.get(kernel.id) is kernel:
                    del self._kernels[kernel.id]
                self._recorded.discard(kernel.id)
                await kernel.detach(
                    code=SERVICE_RESTART, reason="another server took this kernel over; reconnect"
                )
                return
            if record is not None and record.stop:
                await self._stop(kernel, NORMAL, "the kernel was shut down")
                return
        await kernel.recover()

    # -- the pool -----------------------------------------------------------------------------

    def _poolable(self, *, kernel_id: str | None, cwd: Path, env: dict[str, str] | None) -> bool:
        """Whether a pool kernel is what this start would make: no client-chosen id, no extra
        environment (a running process's cannot change), the root as working directory."""
        return kernel_id is None and not env and cwd == self.root_dir

    async def _hand_out(self, entry: PoolEntry) -> Kernel:
        """Give a claimed pool kernel to a client, once it is ready."""
        kernel = entry.kernel
        self._kernels[kernel.id] = kernel
        try:
            await entry.done.wait()
        except BaseException:
            self._kernels.pop(kernel.id, None)
            self.pool.give_back(entry)
            raise
        if entry.error is not None:
            self._kernels.pop(kernel.id, None)
            self.pool.changed()
            if isinstance(entry.error, KernelStartFailed):
                raise entry.error
            raise KernelStartFailed(f"Kernel {kernel.name} failed to start: {entry.error}")
        kernel.hub.last_activity = time.time()
        log.info("kernel %s (%s) handed out from the pool", kernel.id, kernel.name)
        return kernel.model()

    def _room(self) -> int:
        """Kernels that may still start before ``max_kernels`` (pool kernels included)."""
        limit = self.settings.max_kernels
        if limit is None:
            return len(self.pool) + 1
        return limit - len(self._kernels) - len(self.pool)

    def _pool_capacity(self) -> int:
        """How many pool kernels are allowed now: ``prespawn_count``, less at ``max_kernels``."""
        size = self.settings.prespawn_count
        limit = self.settings.max_kernels
        if limit is not None:
            size = min(size, limit - len(self._kernels))
        return max(0, size)

    async def _create_pool_kernel(self) -> ManagedKernel:
        assert self._runtime is not None
        spec = await self.specs.find(self.spec_name(None))
        return ManagedKernel(str(uuid.uuid4()), spec, self._runtime)

    async def _launch_pool_kernel(self, kernel: ManagedKernel) -> None:
        spec = await self.specs.find(kernel.name)
        await kernel.start(cwd=self.root_dir, env=child_environment(), seed=self._seed_for(spec))

    def _seed_for(self, spec: InstalledKernelSpec) -> SeedNotebook | None:
        seed = self.seed
        if seed is None or not seed.applies_to(spec.spec.get("language")):
            return None
        return seed

    async def _cwd_for(self, path: str | None) -> Path:
        """The directory of ``path`` under the root (the nearest one that exists)."""
        if not path:
            return self.root_dir
        relative = PurePosixPath(path.strip("/"))
        if ".." in relative.parts or "\\" in path:
            raise BadRequest(f"path {path!r} is outside the served directory")
        candidate = self.root_dir.joinpath(*relative.parts)
        return await anyio.to_thread.run_sync(_nearest_directory, candidate, self.root_dir)

    async def _run_loops(self) -> None:
        with self._loops:
            async with anyio.create_task_group() as group:
                group.start_soon(self._monitor)
                if self.records is not None:
                    group.start_soon(self._records_loop)
                    group.start_soon(self._restarts_loop)
                    if self.records.dialect == "postgresql":
                        group.start_soon(RestartNotices(self.records.database, self._woken).run)
                if self.settings.cull_idle_timeout > 0:
                    group.start_soon(self._cull)
                if self.settings.prespawn_count > 0:
                    group.start_soon(self.pool.run)

    async def _monitor(self) -> None:
        while True:
            await anyio.sleep(self.settings.monitor_interval)
            for kernel in list(self._kernels.values()):
                try:
                    if kernel.phase == "running" and not await kernel.is_alive():
                        self._task_group.start_soon(self._recover, kernel)
                    kernel.hub.expire(self.settings.reconnect_window)
                except Exception:
                    log.exception("kernel %s: monitor check failed", kernel.id)
            for entry in list(self.pool.entries):
                try:
                    if entry.ready and not await entry.kernel.is_alive():
                        log.warning("kernel pool: kernel %s died; replacing it", entry.kernel.id)
                        dead = self.pool.discard(entry)
                        self._task_group.start_soon(
                            self._stop, dead, GOING_AWAY, "the pool kernel died"
                        )
                except Exception:
                    log.exception("kernel pool: monitor check of %s failed", entry.kernel.id)

    async def _cull(self) -> None:
        while True:
            await anyio.sleep(self.settings.cull_interval)
            now = time.time()
            for kernel in list(self._kernels.values()):
                idle = now - kernel.hub.last_activity
                elsewhere = self._clients_elsewhere.get(kernel.id, 0.0) > now
                if not should_cull(
                    self.settings,
                    phase=kernel.phase,
                    idle=idle,
                    connections=kernel.hub.connections + elsewhere,
                    execution_state=kernel.hub.execution_state,
                ):
                    continue
                log.info("culling kernel %s, idle for %.0f s", kernel.id, idle)
                try:
                    await self._stop(
                        kernel, NORMAL, f"the kernel was culled after {idle:.0f} s without activity"
                    )
                except Exception:
                    log.exception("kernel %s: culling failed", kernel.id)


def check_env(env: dict[str, str] | None, allowed: list[str]) -> None:
    """Raise BadRequest unless every name in ``env`` matches a shell pattern in ``allowed``."""
    refused = sorted(
        key for key in env or () if not any(fnmatch.fnmatchcase(key, p) for p in allowed)
    )
    if refused:
        raise BadRequest(
            f"environment variable {refused[0]} may not be set by clients; "
            f"kernels.allowed_env allows: {', '.join(allowed) or 'none'}",
            reason="Environment not allowed",
        )


def should_cull(
    settings: KernelsSettings, *, phase: str, idle: float, connections: int, execution_state: str
) -> bool:
    """Whether a kernel idle for ``idle`` seconds is culled under ``settings``."""
    if settings.cull_idle_timeout <= 0 or phase != "running" or idle < settings.cull_idle_timeout:
        return False
    if connections and not settings.cull_connected:
        return False
    return execution_state != "busy" or settings.cull_busy


def _check_kernel_id(kernel_id: str) -> str:
    if not _UUID.fullmatch(kernel_id):
        raise BadRequest(f"kernel_id {kernel_id!r} is not a UUID")
    return kernel_id


def _nearest_directory(candidate: Path, root: Path) -> Path:
    while candidate != root and not candidate.is_dir():
        candidate = candidate.parent
    return candidate


def _runtime_dir() -> str:
    path = jupyter_runtime_dir()
    os.makedirs(path, mode=0o700, exist_ok=True)
    return path
