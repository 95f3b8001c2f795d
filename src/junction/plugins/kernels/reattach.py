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

A stored pid is signalled only while it is still the kernel's process: not init, not this
server, and its command line names the kernel (its connection file is ``kernel-<id>.json``),
so a pid the system gave to another process since is left alone. The process group is
signalled only while it is that process's own group and not this server's.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
import types
from pathlib import Path
from typing import Any

from jupyter_client.manager import AsyncKernelManager
from jupyter_client.provisioning.factory import KernelProvisionerFactory
from jupyter_client.provisioning.local_provisioner import LocalProvisioner

from junction.plugins.kernels.records import pid_alive

__all__ = [
    "LOCAL",
    "ReattachedProcess",
    "kernel_group",
    "kernel_process",
    "load_provisioner",
    "provisioner_info",
]

log = logging.getLogger("junction.kernels")

LOCAL = "local"
"""``provisioner["kind"]`` of kernels jupyter_client's ``LocalProvisioner`` launched."""


def kernel_process(pid: object, kernel_id: str) -> bool:
    """Whether ``pid`` is a live process of kernel ``kernel_id`` on this host: above 1, not
    this server, and its command line names the kernel."""
    if not isinstance(pid, int) or isinstance(pid, bool) or pid <= 1 or pid == os.getpid():
        return False
    if not kernel_id:
        return False
    try:
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return False
    return kernel_id.encode() in cmdline and pid_alive(pid)


def kernel_group(pid: int, pgid: object) -> bool:
    """Whether ``pgid`` is the process group of ``pid`` (a kernel's, see
    :func:`kernel_process`), and neither init's nor this server's."""
    if not isinstance(pgid, int) or isinstance(pgid, bool) or pgid <= 1:
        return False
    try:
        return pgid != os.getpgid(0) and os.getpgid(pid) == pgid
    except OSError:
        return False


class ReattachedProcess(LocalProvisioner):
    """Mixed in before a ``LocalProvisioner`` class: drives a process it did not start, by
    its stored pid and process group (see :func:`reattached_class`)."""

    @property
    def has_process(self) -> bool:
        """Whether the kernel process runs."""
        if self.process is not None:
            return True
        return kernel_process(self.pid, self.kernel_id)

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
        pid = self.pid
        if not isinstance(pid, int) or not kernel_process(pid, self.kernel_id):
            return
        pgid = self.pgid
        if isinstance(pgid, int) and kernel_group(pid, pgid) and hasattr(os, "killpg"):
            try:
                os.killpg(pgid, signum)
                return
            except OSError:
                pass
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signum)

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
    elif isinstance(provisioner, LocalProvisioner) and provisioner.process is None:
        pid = provisioner.pid
        if not isinstance(pid, int) or not kernel_process(pid, kernel_id):
            log.warning(
                "kernel %s: process %s is not the kernel's; it is left alone", kernel_id, pid
            )
            provisioner.pid = provisioner.pgid = None
        elif not kernel_group(pid, provisioner.pgid):
            provisioner.pgid = None  # only the process itself is signalled
    manager.provisioner = provisioner
    # As after a start: each later shutdown or restart gets a fresh "ready" future.
    manager._attempted_start = True
