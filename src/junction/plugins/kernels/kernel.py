"""One kernel: its jupyter_client manager, its hub, and its lifecycle.

Phases (``ManagedKernel.phase``)::

    starting --ready--> running --REST restart, or death--> restarting --ready--> running
                                                                 |
                                                   restarts keep failing
                                                                 v
                                                               dead (kept until deleted)
    any phase --DELETE, culling, server exit--> stopping --> (forgotten)

"Ready" means the kernel answered ``kernel_info_request`` and its iopub messages arrive,
and, at the first start only, that it ran the seed notebook (``kernels.seed_uri``).
Launching goes through jupyter_client's ``AsyncKernelManager`` and so through the kernel
provisioner named in the spec (local processes by default; third-party provisioners plug in
through jupyter_client's entry points).

During a restart the hub holds client messages back and sends them to the new kernel once
it is ready; requests the old kernel never answered get error replies. The WebSockets stay
attached throughout.
"""

from __future__ import annotations

import contextlib
import logging
import os
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import anyio
import anyio.abc
import zmq.asyncio
from jupyter_client.kernelspec import KernelSpec
from jupyter_client.manager import AsyncKernelManager

from junction.childenv import RunAs, child_environment
from junction.errors import Conflict
from junction.plugins.kernels.hub import KernelHub
from junction.plugins.kernels.models import Kernel
from junction.plugins.kernels.reattach import load_provisioner, provisioner_info
from junction.plugins.kernels.records import KernelRecord
from junction.plugins.kernels.seeding import SeedNotebook, run_seed
from junction.plugins.kernels.service import KernelSeedFailed, KernelStartFailed
from junction.plugins.kernels.settings import KernelsSettings
from junction.plugins.kernels.slots import SlotLimits
from junction.plugins.kernelspecs.service import InstalledKernelSpec
from junction.reaper import Reaper
from junction.services import isoformat

__all__ = ["KernelRuntime", "ManagedKernel"]

log = logging.getLogger("junction.kernels")

STABLE_START = 10.0
"""A kernel that dies sooner than this after starting counts towards ``restart_limit``."""

_KERNEL_SPEC_TRAITS = frozenset(KernelSpec.class_trait_names())


@dataclass(frozen=True)
class KernelRuntime:
    """What every kernel of one server shares."""

    settings: KernelsSettings
    context: zmq.asyncio.Context
    task_group: anyio.abc.TaskGroup
    reaper: Reaper
    connection_dir: Path
    relaunched: Callable[[ManagedKernel], Awaitable[None]] | None = None
    """Called after a restart gave the kernel a new process (its record changes)."""


class _SpecKernelManager(AsyncKernelManager):
    """An ``AsyncKernelManager`` that launches from a spec the kernelspecs service resolved,
    so no kernel spec directory is scanned on the event loop."""

    resolved_spec: KernelSpec | None = None
    owner: tuple[int, int] | None = None

    @property
    def kernel_spec(self) -> KernelSpec | None:
        """The resolved spec (jupyter_client would look it up by name, blocking)."""
        return self.resolved_spec

    def write_connection_file(self, **kwargs: Any) -> None:
        """Write the connection file, and hand it to ``owner`` (uid, gid) when set."""
        super().write_connection_file(**kwargs)
        if self.owner is not None:
            os.chown(self.connection_file, *self.owner)


class ManagedKernel:
    """A kernel the kernels plugin started. See the module docstring for its phases."""

    def __init__(self, kernel_id: str, spec: InstalledKernelSpec, runtime: KernelRuntime) -> None:
        self.id = kernel_id
        self.name = spec.name
        self.runtime = runtime
        self.settings = runtime.settings
        self.phase = "starting"
        self.reason: str | None = None
        limits = SlotLimits(
            client_queue_bytes=self.settings.client_queue_bytes,
            replay_buffer_bytes=self.settings.replay_buffer_bytes,
        )
        self.hub = KernelHub(kernel_id, runtime.context, limits)
        self.manager = _SpecKernelManager(
            kernel_name=spec.name,
            context=runtime.context,
            connection_file=str(runtime.connection_dir / f"kernel-{kernel_id}.json"),
            shutdown_wait_time=self.settings.shutdown_wait_time,
        )
        fields = {key: value for key, value in spec.spec.items() if key in _KERNEL_SPEC_TRAITS}
        self.manager.resolved_spec = KernelSpec(resource_dir=str(spec.resource_dir), **fields)
        self._lock = anyio.Lock()
        self._operation: anyio.CancelScope | None = None
        self._pgid: int | None = None
        self._started_at = time.monotonic()
        self._failures = 0
        self.cwd: Path | None = None
        self.by_wire = False
        """Reattached from another host: no pid to watch, the kernel is reached over ZeroMQ."""
        self.restartable = True
        """False for a reattached kernel that ran as another account: this server does not
        know how to launch it again as that account."""

    # -- what clients see ---------------------------------------------------------------------

    def model(self) -> Kernel:
        """The wire model: state, activity, connections."""
        if self.phase == "running":
            state = self.hub.execution_state
        elif self.phase == "stopping":
            state = "dead"
        else:
            state = self.phase
        moment = datetime.fromtimestamp(self.hub.last_activity, UTC)
        return Kernel(
            id=self.id,
            name=self.name,
            last_activity=isoformat(moment),
            execution_state=state,
            connections=self.hub.connections,
            reason=self.reason,
        )

    @property
    def interrupt_mode(self) -> str:
        """``signal`` or ``message``, from the spec."""
        spec = self.manager.resolved_spec
        return str(spec.interrupt_mode) if spec is not None else "signal"

    # -- lifecycle ----------------------------------------------------------------------------

    async def start(
        self,
        *,
        cwd: Path,
        env: dict[str, str],
        seed: SeedNotebook | None = None,
        account: RunAs | None = None,
    ) -> None:
        """Launch the kernel (as ``account`` when given), run ``seed`` in it, and return
        once it is ready.

        Raises :class:`KernelStartFailed` (:class:`KernelSeedFailed` when a seed cell fails);
        a kernel that failed is stopped.
        """
        async with self._lock:
            if self.phase != "starting":  # shut down before it began
                raise KernelStartFailed(f"Kernel {self.name} was shut down while starting")
            with anyio.CancelScope() as self._operation:
                launch: dict[str, Any] = {}
                if self.settings.keep_on_shutdown:  # no JPY_PARENT_PID: it outlives us
                    launch["independent"] = True
                if account is not None:
                    launch = account.popen_options()
                    self.manager.owner = (account.uid, account.gid)
                    self.manager.connection_file = str(
                        account.connection_dir / f"kernel-{self.id}.json"
                    )
                self.cwd = cwd
                try:
                    await self.manager.start_kernel(
                        kernel_id=self.id, cwd=str(cwd), env=env, **launch
                    )
                except Exception as exc:
                    log.exception("kernel %s (%s) failed to launch", self.id, self.name)
                    raise KernelStartFailed(f"Kernel {self.name} failed to start: {exc}") from exc
                self._track()
                try:
                    await self._connect()
                except KernelStartFailed:
                    await self._kill_quietly()
                    raise
                if seed is not None and seed.cells:
                    try:
                        await self._seed(seed)
                    except KernelSeedFailed as exc:
                        log.error("kernel %s (%s): %s", self.id, self.name, exc.message)
                        await self.hub.disconnect()
                        await self._kill_quietly()
                        raise
                self.phase = "running"
                self._started_at = time.monotonic()
                log.info("kernel %s (%s) started in %s", self.id, self.name, cwd)
            self._operation = None
            if self.phase != "running":  # a shutdown cancelled the start
                await self._kill_quietly()
                raise KernelStartFailed(f"Kernel {self.name} was shut down while starting")

    async def interrupt(self) -> None:
        """Interrupt per the spec's ``interrupt_mode``; raises Conflict unless running."""
        if self.phase != "running":
            raise Conflict(f"Kernel {self.id} is {self.phase}; it cannot be interrupted now")
        await self.manager.interrupt_kernel()

    async def restart(self) -> None:
        """Restart in place (same id, same WebSockets); raises :class:`KernelStartFailed`."""
        if not self.restartable:
            raise Conflict(
                f"Kernel {self.id} runs as another account and was reattached from an earlier "
                "server, which alone knew how to launch it; shut it down and start a new one"
            )
        async with self._lock:
            if self.phase == "stopping":
                raise Conflict(f"Kernel {self.id} is shutting down")
            with anyio.CancelScope() as self._operation:
                self.phase = "restarting"
                self.reason = None
                try:
                    await self._relaunch(now=False, why="The kernel was restarted")
                except KernelStartFailed as exc:
                    await self._mark_dead(str(exc))
                    raise
            self._operation = None

    async def recover(self) -> None:
        """The process died unasked: tell clients, restart it, or report it dead.

        Called by the plugin's monitor when the kernel's process is found gone.
        """
        async with self._lock:
            if self.phase != "running" or await self.manager.is_alive():
                return
            with anyio.CancelScope() as self._operation:
                quick = time.monotonic() - self._started_at < STABLE_START
                self._failures = self._failures + 1 if quick else 0
                log.warning("kernel %s died", self.id)
                if not self.restartable:
                    await self._mark_dead("The kernel died")
                    self._operation = None
                    return
                self.phase = "restarting"
                self.hub.hold()
                self.hub.fail_pending("The kernel died; it is being restarted")
                self.hub.broadcast_status("restarting")
                while True:
                    limit = self.settings.restart_limit
                    if self._failures >= limit:
                        await self._mark_dead(
                            f"The kernel kept dying ({self._failures} failed starts in a "
                            f"row); it was not restarted again (kernels.restart_limit = {limit})"
                            if limit
                            else "The kernel died (kernels.restart_limit = 0)"
                        )
                        break
                    try:
                        await self._relaunch(
                            now=True, why="The kernel died", newports=self._failures > 0
                        )
                        break
                    except KernelStartFailed as exc:
                        self._failures += 1
                        log.warning("kernel %s: restart failed: %s", self.id, exc)
            self._operation = None

    async def shutdown(self, *, code: int, reason: str, now: bool = False) -> None:
        """Stop the kernel, answer what it owed, close its WebSockets with ``code``/``reason``.

        A restart in progress is cancelled; the process is killed if it does not exit within
        ``shutdown_wait_time``.
        """
        if self._operation is not None:
            self._operation.cancel()
        async with self._lock:
            if self.phase == "stopping":
                return
            self.phase = "stopping"
            self.hub.hold()
            if self.manager.has_kernel:
                await self._stop_process(now=now)
            else:
                with contextlib.suppress(Exception):  # a dead kernel's connection file
                    await self.manager.cleanup_resources()
            self.hub.fail_pending(reason)
            self.hub.close_all(code, reason)
            await self.hub.disconnect()
            self._untrack()
            log.info("kernel %s shut down: %s", self.id, reason)

    async def is_alive(self) -> bool:
        """Whether the kernel's process runs (False while it is not meant to)."""
        if self.by_wire:
            return self.phase == "running"
        return self.phase == "running" and bool(await self.manager.is_alive())

    # -- outliving the server -----------------------------------------------------------------

    async def record(self) -> KernelRecord:
        """What a later server (or another one) needs to reach this kernel again."""
        provisioner = await provisioner_info(self.manager)
        provisioner["connection_file"] = self.manager.connection_file
        launched = self.manager._launch_args or {}
        provisioner["independent"] = bool(launched.get("independent"))
        if self.manager.owner is not None or not self.restartable:
            provisioner["account"] = True
        return KernelRecord(
            id=self.id,
            name=self.name,
            cwd=str(self.cwd or ""),
            connection=dict(self.manager.get_connection_info()),
            provisioner=provisioner,
            last_activity=self.hub.last_activity,
            execution_state=self.hub.execution_state,
        )

    async def reattach(
        self,
        record: KernelRecord,
        *,
        local: bool,
        timeout: float,  # noqa: ASYNC109 - returns, not raises
    ) -> bool:
        """Take over a running kernel another server process started; True once it
        answered (on its control channel, which a busy kernel answers too), False when it
        is gone or silent for ``timeout`` seconds.

        ``local``: it was launched on this host, so its process is watched and signalled
        by pid; otherwise it is reached over ZeroMQ only (``by_wire``).
        """
        async with self._lock:
            self.cwd = Path(record.cwd) if record.cwd else None
            await load_provisioner(
                self.manager, self.id, record.connection, record.provisioner, local=local
            )
            launch: dict[str, Any] = {"env": child_environment()}
            if record.cwd:
                launch["cwd"] = record.cwd
            if self.settings.keep_on_shutdown:
                launch["independent"] = True
            self.manager._launch_args = launch
            self.by_wire = not local
            self.restartable = not record.provisioner.get("account")
            # The connection file is this server's, named for the kernel (never a path
            # read from the database, which would be unlinked or touched below).
            if record.provisioner.get("connection_file") != self.manager.connection_file:
                log.info(
                    "kernel %s: its connection file is now %s",
                    self.id,
                    self.manager.connection_file,
                )
            if local and not await self.manager.is_alive():
                return False
            hub = self.hub
            await hub.connect(dict(record.connection), self.runtime.task_group)
            if not await hub.wait_ready(timeout, channel="control"):
                await hub.disconnect()
                return False
            if local:
                self._track()
                with contextlib.suppress(OSError):  # tells the old reaper it was claimed
                    os.utime(self.manager.connection_file)
            hub.last_activity = record.last_activity
            hub.execution_state = "busy" if record.execution_state == "busy" else "idle"
            self.phase = "running"
            self._started_at = time.monotonic()
            log.info("kernel %s (%s) reattached", self.id, self.name)
            return True

    async def detach(self, *, code: int, reason: str) -> None:
        """Let go of a running kernel without stopping it (``keep_on_shutdown``): its
        WebSockets close with ``code``, its sockets close, the reaper forgets it."""
        if self._operation is not None:
            self._operation.cancel()
        async with self._lock:
            if self.phase == "stopping":
                return
            self.phase = "stopping"
            self.hub.hold()
            self.hub.close_all(code, reason)
            await self.hub.disconnect()
            self._untrack()
            log.info("kernel %s left running: %s", self.id, reason)

    # -- helpers ------------------------------------------------------------------------------

    async def _relaunch(self, *, now: bool, why: str, newports: bool = False) -> None:
        self.hub.hold()
        try:
            await self.manager.restart_kernel(now=now, newports=newports)
        except Exception as exc:
            log.exception("kernel %s failed to restart", self.id)
            raise KernelStartFailed(f"Kernel {self.name} failed to restart: {exc}") from exc
        finally:
            self.hub.fail_pending(why)
            await self.hub.disconnect()
            self._untrack()
        self._track()
        await self._connect()
        self.phase = "running"
        self._started_at = time.monotonic()
        self.by_wire = False
        if self.runtime.relaunched is not None:
            await self.runtime.relaunched(self)

    async def _connect(self) -> None:
        """Connect the hub to the (new) kernel process and wait until it is ready."""
        hub = self.hub
        hub.execution_state = "starting"
        info = dict(self.manager.get_connection_info())
        await hub.connect(info, self.runtime.task_group)
        outcome = "timeout"
        async with anyio.create_task_group() as group:

            async def watch() -> None:
                nonlocal outcome
                while await self.manager.is_alive():  # noqa: ASYNC110 - polls a process
                    await anyio.sleep(min(0.25, self.settings.monitor_interval))
                outcome = "died"
                group.cancel_scope.cancel()

            group.start_soon(watch)
            if await hub.wait_ready(self.settings.kernel_ready_timeout):
                outcome = "ready"
            group.cancel_scope.cancel()
        if outcome == "ready":
            if hub.execution_state == "starting":  # it answered, so it is up
                hub.execution_state = "idle"
            return
        await hub.disconnect()
        if outcome == "died":
            raise KernelStartFailed(
                f"Kernel {self.name} exited during startup; see the server log for its output"
            )
        raise KernelStartFailed(
            f"Kernel {self.name} did not answer within {self.settings.kernel_ready_timeout:g} s "
            "(kernels.kernel_ready_timeout)"
        )

    async def _seed(self, seed: SeedNotebook) -> None:
        """Run the seed notebook, within ``kernel_ready_timeout``, unless the kernel dies."""
        timeout = self.settings.kernel_ready_timeout
        outcome = "timeout"
        failure: KernelSeedFailed | None = None
        with anyio.move_on_after(timeout):
            async with anyio.create_task_group() as group:

                async def watch() -> None:
                    nonlocal outcome
                    while await self.manager.is_alive():  # noqa: ASYNC110 - polls a process
                        await anyio.sleep(min(0.25, self.settings.monitor_interval))
                    outcome = "died"
                    group.cancel_scope.cancel()

                group.start_soon(watch)
                try:
                    await run_seed(self.hub, seed, self.name)
                    outcome = "ok"
                except KernelSeedFailed as exc:
                    outcome, failure = "failed", exc
                group.cancel_scope.cancel()
        if failure is not None:
            raise failure
        if outcome == "died":
            raise KernelSeedFailed(
                f"Kernel {self.name} exited while running its seed notebook (kernels.seed_uri "
                f"{seed.uri}); see the server log for its output",
                ename="KernelDied",
                evalue="the kernel exited during its seed notebook",
            )
        if outcome == "timeout":
            raise KernelSeedFailed(
                f"Kernel {self.name} did not finish its seed notebook (kernels.seed_uri "
                f"{seed.uri}) within {timeout:g} s (kernels.kernel_ready_timeout)",
                ename="TimeoutError",
                evalue=f"the seed notebook took over {timeout:g} s",
            )

    async def _mark_dead(self, reason: str) -> None:
        log.error("kernel %s is dead: %s", self.id, reason)
        self.phase = "dead"
        self.reason = reason
        self.hub.refuse(reason)
        self.hub.broadcast_status("dead")
        await self.hub.disconnect()
        await self._kill_quietly()

    async def _stop_process(self, *, now: bool) -> None:
        grace = self.settings.shutdown_wait_time + 2
        try:
            with anyio.move_on_after(grace) as scope:
                await self.manager.shutdown_kernel(now=now)
            if scope.cancelled_caught:
                await self.manager.shutdown_kernel(now=True)
        except Exception:
            log.exception("kernel %s did not shut down cleanly", self.id)
            await self._kill_quietly()

    async def _kill_quietly(self) -> None:
        try:
            if self.manager.has_kernel:
                await self.manager.shutdown_kernel(now=True)
        except Exception:
            log.exception("kernel %s could not be killed", self.id)
        self._untrack()

    def _track(self) -> None:
        provisioner = self.manager.provisioner
        pgid = getattr(provisioner, "pgid", None)
        if isinstance(pgid, int) and hasattr(os, "getpgid") and pgid != os.getpgid(0):
            self._pgid = pgid
            marker = self.manager.connection_file if self.settings.keep_on_shutdown else None
            self.runtime.reaper.track(pgid, marker=marker)

    def _untrack(self) -> None:
        if self._pgid is not None:
            self.runtime.reaper.untrack(self._pgid)
            self._pgid = None
