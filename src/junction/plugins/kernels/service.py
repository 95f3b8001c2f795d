"""The kernels service contract, used by the kernels routes and by other plugins (sessions).

Implementations live elsewhere in this package; this module holds only the Protocol, its key
and the errors it raises.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Protocol, runtime_checkable

from junction.errors import NotFound, ServiceUnavailable
from junction.plugin import ServiceKey
from junction.plugins.kernels.models import Kernel
from junction.plugins.kernelspecs.service import KernelSpecNotFound

__all__ = [
    "KERNELS",
    "KernelNotFound",
    "KernelSeedFailed",
    "KernelService",
    "KernelSpecNotFound",
    "KernelStartFailed",
    "OutputListener",
    "ServerSideExecution",
]

OutputListener = Callable[[str, dict[str, Any]], None]
"""Called with ``(msg_type, content)`` for each iopub message of a server-side request."""


class KernelNotFound(NotFound):
    """No running kernel has this id."""

    def __init__(self, kernel_id: str) -> None:
        super().__init__(f"Kernel does not exist: {kernel_id}")
        self.kernel_id = kernel_id


class KernelStartFailed(ServiceUnavailable):
    """The kernel process could not be started or did not answer in time."""


class KernelSeedFailed(KernelStartFailed):
    """The kernel started, but a cell of the seed notebook (``kernels.seed_uri``) failed.

    ``ename`` and ``evalue`` are the exception the cell raised, as the kernel reported it.
    """

    def __init__(self, message: str, *, ename: str, evalue: str) -> None:
        super().__init__(message, reason="Seed notebook failed")
        self.ename = ename
        self.evalue = evalue


class KernelService(Protocol):
    """Starts, tracks and stops kernels. Provided by the kernels plugin as :data:`KERNELS`."""

    async def start(
        self,
        *,
        name: str | None = None,
        path: str | None = None,
        env: dict[str, str] | None = None,
        kernel_id: str | None = None,
    ) -> Kernel:
        """Start a kernel of spec ``name`` (the default spec when None) and return its model.

        ``path`` is the API path of the document the kernel serves; its directory under the
        root becomes the kernel's working directory. Raises :class:`KernelSpecNotFound` or
        :class:`KernelStartFailed`.
        """
        ...

    async def get(self, kernel_id: str) -> Kernel:
        """Return the model of a running kernel; raises :class:`KernelNotFound`."""
        ...

    async def list(self) -> list[Kernel]:
        """Return every running kernel."""
        ...

    def exists(self, kernel_id: str) -> bool:
        """Whether a kernel with this id is running (or restarting)."""
        ...

    async def shutdown(self, kernel_id: str) -> None:
        """Stop a kernel and forget it; raises :class:`KernelNotFound`."""
        ...

    async def interrupt(self, kernel_id: str) -> None:
        """Interrupt a kernel per its spec's interrupt mode; raises :class:`KernelNotFound`."""
        ...

    async def restart(self, kernel_id: str) -> Kernel:
        """Restart a kernel in place, keeping its id and WebSockets; returns the new model."""
        ...


@runtime_checkable
class ServerSideExecution(Protocol):
    """What a kernels service offers a plugin that runs code as a client of the server
    itself; the kernels plugin's service has it (check with ``isinstance``)."""

    async def execute(self, kernel_id: str, code: str, on_output: OutputListener) -> dict[str, Any]:
        """Run ``code`` on the kernel as a client of the server itself.

        ``on_output`` gets every iopub message (but ``status``) the request causes, as it
        comes; returns the ``execute_reply`` content once the kernel is idle again. Called
        by plugins that write outputs into documents themselves (collaboration). Raises
        :class:`KernelNotFound`; the caller bounds the wait.
        """
        ...


KERNELS: ServiceKey[KernelService] = ServiceKey("kernels")
