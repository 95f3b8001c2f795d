"""A fake kernels service for fast session tests: it implements the KernelService Protocol.

Kernels here are plain records; ``specs`` are the installed kernel spec names. Tests steer it
with ``fail_start`` (starts raise KernelStartFailed) and ``start_gate`` (starts wait on it).
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

import anyio

from junction.plugin import Plugin, PluginContext
from junction.plugins.kernels.models import Kernel
from junction.plugins.kernels.service import (
    KERNELS,
    KernelNotFound,
    KernelService,
    KernelSpecNotFound,
    KernelStartFailed,
)

DEFAULT_SPEC = "python3"


@dataclass
class StartCall:
    """The arguments of one ``start`` call."""

    name: str | None
    path: str | None
    env: dict[str, str] | None
    kernel_id: str | None


@dataclass
class FakeKernels:
    """Kernels as records. Implements :class:`KernelService`."""

    specs: tuple[str, ...] = (DEFAULT_SPEC, "other")
    kernels: dict[str, Kernel] = field(default_factory=dict)
    starts: list[StartCall] = field(default_factory=list)
    shutdowns: list[str] = field(default_factory=list)
    fail_start: bool = False
    start_gate: anyio.Event | None = None

    async def start(
        self,
        *,
        name: str | None = None,
        path: str | None = None,
        env: dict[str, str] | None = None,
        kernel_id: str | None = None,
    ) -> Kernel:
        """Record the call and make a kernel (after ``start_gate``, if set)."""
        self.starts.append(StartCall(name, path, env, kernel_id))
        spec = name or DEFAULT_SPEC
        if spec not in self.specs:
            raise KernelSpecNotFound(spec)
        if self.start_gate is not None:
            await self.start_gate.wait()
        if self.fail_start:
            raise KernelStartFailed("the kernel process exited at once")
        kernel = Kernel(
            id=kernel_id or str(uuid.uuid4()),
            name=spec,
            last_activity="2026-01-01T00:00:00.000000Z",
            execution_state="idle",
        )
        self.kernels[kernel.id] = kernel
        return kernel

    async def get(self, kernel_id: str) -> Kernel:
        """Return the kernel or raise KernelNotFound."""
        try:
            return self.kernels[kernel_id]
        except KeyError:
            raise KernelNotFound(kernel_id) from None

    async def list(self) -> list[Kernel]:
        """Every kernel."""
        return list(self.kernels.values())

    def exists(self, kernel_id: str) -> bool:
        """Whether the kernel is known."""
        return kernel_id in self.kernels

    async def shutdown(self, kernel_id: str) -> None:
        """Forget the kernel."""
        if kernel_id not in self.kernels:
            raise KernelNotFound(kernel_id)
        del self.kernels[kernel_id]
        self.shutdowns.append(kernel_id)

    async def interrupt(self, kernel_id: str) -> None:
        """Nothing to interrupt; only checks the id."""
        await self.get(kernel_id)

    async def restart(self, kernel_id: str) -> Kernel:
        """Mark the kernel as freshly started."""
        kernel = await self.get(kernel_id)
        kernel = kernel.model_copy(update={"execution_state": "starting"})
        self.kernels[kernel_id] = kernel
        return kernel

    def set_state(self, kernel_id: str, state: str) -> None:
        """Change a kernel's execution state, as a real kernel would on its own."""
        self.kernels[kernel_id] = self.kernels[kernel_id].model_copy(
            update={"execution_state": state}
        )


def fake_kernels_plugin(kernels: FakeKernels) -> Plugin:
    """A plugin providing KERNELS from ``kernels``, standing in for the kernels plugin."""

    @asynccontextmanager
    async def lifespan(ctx: PluginContext[Any]) -> AsyncIterator[None]:
        service: KernelService = kernels
        ctx.provide(KERNELS, service)
        yield

    return Plugin(
        name="fake-kernels", description="kernels as records", provides=[KERNELS], lifespan=lifespan
    )
