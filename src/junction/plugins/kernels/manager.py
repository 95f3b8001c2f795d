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
- the pool's refill, when ``prespawn_count`` is set.

``max_kernels`` bounds the clients' kernels. Pool kernels fill the room left: the pool holds
at most ``max_kernels`` minus the clients' kernels, and a start the pool cannot serve stops a
pool kernel first when all the room is taken; so there are never more kernel processes than
``max_kernels``, and pool kernels never cost a client a kernel.

At server exit every kernel, pool kernels included, is shut down (concurrently, each bounded
by ``shutdown_wait_time``); a reaper process kills any the server could not stop (see
:mod:`junction.reaper`, the core's :data:`~junction.services.REAPER`).
"""

from __future__ import annotations

import fnmatch
import logging
import os
import re
import time
import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path, PurePosixPath
from types import TracebackType
from typing import Any

import anyio
import anyio.abc
import zmq.asyncio
from jupyter_core.paths import jupyter_runtime_dir

from junction.childenv import child_environment, run_as
from junction.errors import BadRequest, Forbidden
from junction.plugins.kernels.connection import GOING_AWAY, NORMAL
from junction.plugins.kernels.kernel import KernelRuntime, ManagedKernel
from junction.plugins.kernels.metrics import WireStats
from junction.plugins.kernels.models import Kernel
from junction.plugins.kernels.pool import KernelPool, PoolEntry
from junction.plugins.kernels.seeding import SeedNotebook
from junction.plugins.kernels.service import KernelNotFound, KernelStartFailed
from junction.plugins.kernels.settings import KernelsSettings
from junction.plugins.kernelspecs.service import InstalledKernelSpec, KernelSpecService
from junction.reaper import Reaper

__all__ = ["JupyterClientKernels", "check_env", "should_cull"]

log = logging.getLogger("junction.kernels")

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
                for kernel in [*self._kernels.values(), *self.pool.discard_all()]:
                    group.start_soon(self._stop, kernel, GOING_AWAY, "the server is stopping")
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
    ) -> Kernel:
        """Start a kernel and wait until it answers (and ran the seed); see the Protocol.

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
                return await self._hand_out(entry)
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
        return kernel.model()

    def spec_name(self, requested: str | None) -> str:
        """The spec a start asking for ``requested`` gets (``force_kernel_name`` wins)."""
        return self.settings.force_kernel_name or requested or self.settings.default_kernel_name

    async def get(self, kernel_id: str) -> Kernel:
        """The model of a kernel; raises :class:`KernelNotFound`."""
        return self.kernel(kernel_id).model()

    async def list(self) -> list[Kernel]:
        """Every kernel, in start order."""
        return [kernel.model() for kernel in self._kernels.values()]

    def exists(self, kernel_id: str) -> bool:
        """Whether the kernel is known (starting, running, restarting or dead)."""
        return kernel_id in self._kernels

    async def shutdown(self, kernel_id: str) -> None:
        """Shut a kernel down and forget it; its WebSockets close with 1000."""
        await self._stop(self.kernel(kernel_id), NORMAL, "the kernel was shut down")

    async def interrupt(self, kernel_id: str) -> None:
        """Interrupt per the spec's interrupt mode (signal or interrupt_request)."""
        await self.kernel(kernel_id).interrupt()

    async def restart(self, kernel_id: str) -> Kernel:
        """Restart in place and wait until the new process answers."""
        kernel = self.kernel(kernel_id)
        await kernel.restart()
        return kernel.model()

    async def execute(
        self, kernel_id: str, code: str, on_output: Callable[[str, dict[str, Any]], None]
    ) -> dict[str, Any]:
        """Run ``code`` as a server-side client (see ``KernelService.execute``)."""
        return await self.kernel(kernel_id).hub.execute(code, on_output)

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
                        self._task_group.start_soon(kernel.recover)
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
                if not should_cull(
                    self.settings,
                    phase=kernel.phase,
                    idle=idle,
                    connections=kernel.hub.connections,
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
