"""What a scenario runs against: a server (through its public API) or the floor (ZeroMQ).

A target names itself, starts and stops kernels, and opens connections to them. Scenarios
that need a server's HTTP API use :class:`ServerTarget` only; kernel scenarios take any
:class:`KernelTarget`, so the floor appears in the same table rows.
"""

from __future__ import annotations

import subprocess
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from jupyter_client.kernelspec import KernelSpecManager
from jupyter_client.manager import AsyncKernelManager

from bench.channels import Channel, WebSocketChannel, WireProtocol, ZmqChannel
from bench.environments import KERNEL_NAME
from bench.rest import JupyterClient, StartedKernel
from bench.servers import RunningServer

__all__ = ["FLOOR", "FloorTarget", "KernelTarget", "ServerTarget"]

FLOOR = "floor (ZeroMQ)"


class KernelTarget(Protocol):
    """Something that runs kernels and lets the harness talk to them."""

    @property
    def name(self) -> str:
        """The column this target fills in the table."""
        ...

    @property
    def pid(self) -> int | None:
        """The server process to measure (None for the floor)."""
        ...

    def protocols(self) -> tuple[WireProtocol, ...]:
        """The wire formats this target speaks."""
        ...

    async def start_kernel(self) -> Any:
        """Start a kernel; returns a handle for :meth:`open` and :meth:`stop_kernel`."""
        ...

    async def open(self, kernel: Any, protocol: WireProtocol) -> Channel:
        """Connect a new client to ``kernel``."""
        ...

    async def stop_kernel(self, kernel: Any) -> None:
        """Shut ``kernel`` down."""
        ...


@dataclass
class ServerTarget:
    """A running server, driven through REST and the kernel WebSocket."""

    server: RunningServer
    client: JupyterClient
    compression: bool = True

    @property
    def name(self) -> str:
        """The server's name."""
        return self.server.kind.name

    @property
    def pid(self) -> int | None:
        """The server's process id."""
        return self.server.pid

    def protocols(self) -> tuple[WireProtocol, ...]:
        """Servers speak both WebSocket formats."""
        return ("json", "v1")

    async def start_kernel(self) -> StartedKernel:
        """``POST /api/kernels`` (or ``/api/sessions``)."""
        return await self.client.start_kernel(KERNEL_NAME)

    async def open(self, kernel: StartedKernel, protocol: WireProtocol) -> Channel:
        """Open the kernel's WebSocket."""
        return await WebSocketChannel.open(
            self.client.url,
            kernel.id,
            headers=self.client.auth_headers(),
            token=self.client.token,
            protocol=protocol,
            compression=self.compression,
        )

    async def stop_kernel(self, kernel: StartedKernel) -> None:
        """Delete the kernel (or its session)."""
        await self.client.stop_kernel(kernel)


@dataclass
class FloorTarget:
    """Kernels launched by the harness with jupyter_client and reached over ZeroMQ."""

    jupyter_path: Path
    cwd: Path
    name: str = FLOOR
    managers: list[AsyncKernelManager] = field(default_factory=list)

    @property
    def pid(self) -> int | None:
        """No server in between."""
        return None

    def protocols(self) -> tuple[WireProtocol, ...]:
        """ZeroMQ only."""
        return ("zmq",)

    async def start_kernel(self) -> AsyncKernelManager:
        """Launch a kernel from the shared kernelspec."""
        specs = KernelSpecManager(
            kernel_dirs=[str(self.jupyter_path / "kernels")], ensure_native_kernel=False
        )
        manager = AsyncKernelManager(kernel_name=KERNEL_NAME, kernel_spec_manager=specs)
        await manager.start_kernel(
            cwd=str(self.cwd), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
        )
        self.managers.append(manager)
        return manager

    async def open(self, kernel: AsyncKernelManager, protocol: WireProtocol) -> Channel:
        """A new ZeroMQ client of the kernel."""
        return await ZmqChannel.open(kernel.get_connection_info(session=False))

    async def stop_kernel(self, kernel: AsyncKernelManager) -> None:
        """Shut the kernel down at once."""
        await kernel.shutdown_kernel(now=True)
        if kernel in self.managers:
            self.managers.remove(kernel)

    async def stop_all(self) -> None:
        """Shut down every kernel still running."""
        for manager in list(self.managers):
            await self.stop_kernel(manager)
