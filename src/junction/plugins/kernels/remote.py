"""A kernel another server process runs, reached from this one over ZeroMQ.

Servers sharing a database (replicas behind a proxy) each reach every kernel: a request for
a kernel this process does not run finds its record and opens this process's own sockets to
the kernel's ports (ZeroMQ's shell, control and stdin ROUTERs and the iopub publisher accept
many peers; each hub has an identity of its own). Clients attached here get every iopub
message and the replies to their own requests, as on the owning server.

Interrupts and shutdowns go over the control channel (``interrupt_request``,
``shutdown_request``), which needs no access to the process; a restart, which launches a new
process on the kernel's host, is asked of the owning server through the kernel's record (see
:meth:`~junction.plugins.kernels.manager.JupyterClientKernels.restart`), and this process
then reconnects its sockets.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import AsyncIterator
from datetime import UTC, datetime

import anyio
import anyio.abc
import zmq.asyncio

from junction.errors import Conflict, ServiceUnavailable
from junction.plugins.kernels.hub import KernelHub
from junction.plugins.kernels.models import Kernel
from junction.plugins.kernels.records import KernelRecord
from junction.plugins.kernels.slots import SlotLimits
from junction.services import isoformat

__all__ = ["RemoteKernel", "record_model"]

log = logging.getLogger("junction.kernels")

_ANSWER_WAIT = 10.0
"""Seconds a kernel of another server gets to answer a request sent over control."""


def _unanswered(kernel_id: str) -> ServiceUnavailable:
    return ServiceUnavailable(
        f"Kernel {kernel_id} runs on another server and does not answer",
        reason="Kernel unreachable",
    )


def record_model(record: KernelRecord) -> Kernel:
    """The wire model of a kernel of another server, from its record alone."""
    return Kernel(
        id=record.id,
        name=record.name,
        last_activity=isoformat(datetime.fromtimestamp(record.last_activity, UTC)),
        execution_state=record.execution_state,
    )


class RemoteKernel:
    """A kernel whose record names another server process; see the module docstring."""

    def __init__(
        self, record: KernelRecord, context: zmq.asyncio.Context, limits: SlotLimits
    ) -> None:
        self.record = record
        self.id = record.id
        self.name = record.name
        self.hub = KernelHub(record.id, context, limits)
        self._connecting = anyio.Lock()
        self._connection: dict[str, object] | None = None
        self._users = 0

    @property
    def needed(self) -> bool:
        """Whether this process still needs its sockets to the kernel: a client is attached
        (or may come back within the reconnect window), or a request is using them."""
        return bool(self.hub.slots) or self._users > 0

    @contextlib.asynccontextmanager
    async def in_use(
        self,
        task_group: anyio.abc.TaskGroup,
        timeout: float,  # noqa: ASYNC109 - passed on to connect()
    ) -> AsyncIterator[KernelHub]:
        """The connected hub (see :meth:`connect`), kept :attr:`needed` for the block: a
        WebSocket handshake that has no slot attached yet, or a request waiting for its
        reply, must not see its sockets closed under it as unused."""
        self._users += 1
        try:
            yield await self.connect(task_group, timeout)
        finally:
            self._users -= 1

    def model(self) -> Kernel:
        """The wire model, from the record (renewed by the owner every few seconds) and,
        while clients are attached here, from the kernel's own status messages."""
        record = self.record
        live = self.hub.connected and self.hub.execution_state in ("idle", "busy")
        state = self.hub.execution_state if live else record.execution_state
        activity = max(record.last_activity, self.hub.last_activity if live else 0.0)
        return Kernel(
            id=self.id,
            name=self.name,
            last_activity=isoformat(datetime.fromtimestamp(activity, UTC)),
            execution_state=state,
            connections=self.hub.connections,
        )

    async def connect(
        self,
        task_group: anyio.abc.TaskGroup,
        timeout: float,  # noqa: ASYNC109 - bounds the queue and readiness waits, then raises
        *,
        again: bool = False,
    ) -> KernelHub:
        """Open this process's sockets to the kernel (once; again when its ports changed, or
        when ``again``, after a restart) and wait until it answers; raises
        ``ServiceUnavailable`` when it does not within ``timeout`` seconds, counted from
        the call, including the wait behind another caller's attempt (so callers that pile
        up on a kernel that does not answer each wait one timeout, not one per caller
        ahead of them)."""
        deadline = anyio.current_time() + timeout
        acquired = False
        with anyio.move_on_after(timeout):
            await self._connecting.acquire()
            acquired = True
        if not acquired:
            raise _unanswered(self.id)
        try:
            wanted = dict(self.record.connection)
            if self.hub.connected and self._connection == wanted and not again:
                return self.hub
            if self.hub.connected:
                self.hub.hold()
                await self.hub.disconnect()
            await self.hub.connect(wanted, task_group)
            self._connection = wanted
            left = max(deadline - anyio.current_time(), 0.0)
            if not await self.hub.wait_ready(left, channel="control"):
                await self.hub.disconnect()
                self._connection = None
                raise _unanswered(self.id)
            if self.hub.execution_state == "starting":
                self.hub.execution_state = self.record.execution_state
            return self.hub
        finally:
            self._connecting.release()

    async def interrupt(self, task_group: anyio.abc.TaskGroup) -> None:
        """``interrupt_request`` on the control channel."""
        async with self.in_use(task_group, _ANSWER_WAIT) as hub:
            with anyio.move_on_after(_ANSWER_WAIT):
                reply = await hub.call("control", "interrupt_request", {})
                if reply is not None and reply.get("status", "ok") != "ok":
                    raise Conflict(f"Kernel {self.id} refused the interrupt: {reply}")
                return
        raise ServiceUnavailable(
            f"Kernel {self.id} did not answer the interrupt request within {_ANSWER_WAIT:g} s",
            reason="Kernel unreachable",
        )

    async def request_shutdown(self, task_group: anyio.abc.TaskGroup) -> None:
        """``shutdown_request`` on the control channel (best effort: the owner also acts on
        the record's stop flag)."""
        with contextlib.suppress(ServiceUnavailable):
            async with self.in_use(task_group, _ANSWER_WAIT) as hub:
                with anyio.move_on_after(_ANSWER_WAIT):
                    await hub.call("control", "shutdown_request", {"restart": False})

    async def close(self, code: int, reason: str) -> None:
        """Close attached WebSockets and this process's sockets."""
        self.hub.fail_pending(reason)
        self.hub.close_all(code, reason)
        await self.hub.disconnect()
