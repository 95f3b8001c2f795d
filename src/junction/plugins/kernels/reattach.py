"""Rebuilding a jupyter_client kernel manager for a kernel another process started.

jupyter_client has no helper for this. The order that works: a manager for the spec, the
stored connection info loaded into it, a provisioner made for the spec and given the stored
provisioner info (``load_provisioner_info``), and the launch arguments a restart needs.

jupyter_client's ``LocalProvisioner`` acts only on the ``Popen`` it made, which a reloaded
one does not have: polls say the kernel exited, signals go nowhere. So the spec's provisioner
(``LocalProvisioner`` or a subclass of it, such as Junction's netns provisioner) is reloaded
with :class:`ReattachedProcess` mixed in, which polls and signals the stored pid and process
group instead, until a restart launches a process of its own. Only on the host that launched
the kernel: elsewhere a pid means nothing, and such a kernel is reached over ZeroMQ alone
(see the manager).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import types
from typing import Any

from jupyter_client.manager import AsyncKernelManager
from jupyter_client.provisioning.factory import KernelProvisionerFactory
from jupyter_client.provisioning.local_provisioner import LocalProvisioner

from junction.plugins.kernels.records import pid_alive

__all__ = ["LOCAL", "ReattachedProcess", "load_provisioner", "provisioner_info"]

LOCAL = "local"
"""``provisioner["kind"]`` of kernels jupyter_client's ``LocalProvisioner`` launched."""


class ReattachedProcess(LocalProvisioner):
    """Mixed in before a ``LocalProvisioner`` class: drives a process it did not start, by
    its stored pid and process group (see :func:`reattached_class`)."""

    @property
    def has_process(self) -> bool:
        """Whether the kernel process runs."""
        if self.process is not None:
            return True
        return isinstance(self.pid, int) and pid_alive(self.pid)

    async def poll(self) -> int | None:
        """None while the kernel runs, else 0 (its exit status is its parent's to read)."""
        if self.process is not None:
            result: int | None = await super().poll()
            return result
        return None if self.has_process else 0

    async def wait(self) -> int | None:
        """Wait until the kernel process exits."""
        if self.process is not None:
            result: int | None = await super().wait()
            return result
        while self.has_process:  # noqa: ASYNC110 - polls a process that is not our child
            await asyncio.sleep(0.1)
        self.pid = None
        return 0

    async def send_signal(self, signum: int) -> None:
        """Signal the kernel's process group (else the process)."""
        if self.process is not None:
            await super().send_signal(signum)
            return
        if not isinstance(self.pid, int) or not pid_alive(self.pid):
            return
        if isinstance(self.pgid, int) and hasattr(os, "killpg"):
            try:
                os.killpg(self.pgid, signum)
                return
            except OSError:
                pass
        with contextlib.suppress(ProcessLookupError):
            os.kill(self.pid, signum)

    async def kill(self, restart: bool = False) -> None:
        """SIGKILL the kernel's group."""
        if self.process is not None:
            await super().kill(restart)
            return
        await self.send_signal(signal.SIGKILL)

    async def terminate(self, restart: bool = False) -> None:
        """SIGTERM the kernel's group."""
        if self.process is not None:
            await super().terminate(restart)
            return
        await self.send_signal(signal.SIGTERM)


_CLASSES: dict[type[LocalProvisioner], type[LocalProvisioner]] = {}


def reattached_class(cls: type[LocalProvisioner]) -> type[LocalProvisioner]:
    """``cls`` with :class:`ReattachedProcess` first in its method order (made once)."""
    if issubclass(cls, ReattachedProcess):
        return cls
    made = _CLASSES.get(cls)
    if made is None:
        made = _CLASSES[cls] = types.new_class(
            f"Reattached{cls.__name__}", (ReattachedProcess, cls)
        )
    return made


async def provisioner_info(manager: AsyncKernelManager) -> dict[str, Any]:
    """What a later process needs to find the kernel's process again (no connection info:
    the record keeps that apart, its key sealed)."""
    provisioner = manager.provisioner
    if provisioner is None:
        return {}
    info = dict(await provisioner.get_provisioner_info())
    info.pop("connection_info", None)
    info["kind"] = (
        LOCAL if isinstance(provisioner, LocalProvisioner) else type(provisioner).__name__
    )
    return info


async def load_provisioner(
    manager: AsyncKernelManager,
    kernel_id: str,
    connection: dict[str, Any],
    info: dict[str, Any],
    *,
    local: bool,
) -> None:
    """Give ``manager`` the kernel described by ``connection`` and ``info``.

    ``local``: the kernel was launched on this host, so its pid may be used.
    """
    manager.load_connection_info(connection)  # type: ignore[arg-type]
    manager.kernel_id = kernel_id
    stored = {**info, "kernel_id": kernel_id, "connection_info": connection}
    provisioner: Any = KernelProvisionerFactory.instance().create_provisioner_instance(
        kernel_id, manager.kernel_spec, parent=manager
    )
    if isinstance(provisioner, LocalProvisioner):
        provisioner.__class__ = reattached_class(type(provisioner))
    await provisioner.load_provisioner_info(stored)
    if isinstance(provisioner, LocalProvisioner) and not local:
        provisioner.pid = provisioner.pgid = None  # another host's: reach it over ZeroMQ only
    manager.provisioner = provisioner
    # As after a start: each later shutdown or restart gets a fresh "ready" future.
    manager._attempted_start = True
