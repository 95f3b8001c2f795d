"""A kernel provisioner that runs each kernel on a host of its own: a Linux network namespace.

Each kernel gets a network namespace (``ip netns``) joined to the server's by a veth pair with
a /30 of its own (``10.231.0.0/16`` by default): the kernel binds its five ZeroMQ ports on
its side of the pair, and the server reaches it there over the wire, exactly as it would reach
a kernel on another machine. Nothing else is in the namespace, so the ports are fixed
(``50001``-``50005``) and never collide. The kernel keeps the server's filesystem, account
and process tree (``ip netns exec`` changes only the network), so signals, the reaper and
the working directory behave as for a local kernel; what changes is the network: the kernel
sees only its own interface and cannot reach the server's loopback services.

Needs Linux, ``iproute2`` and ``CAP_NET_ADMIN`` (root). Use it in a kernel spec::

    {"argv": ["python3", "-m", "ipykernel_launcher", "-f", "{connection_file}"],
     "display_name": "Python 3 (own network)", "language": "python",
     "metadata": {"kernel_provisioner": {"provisioner_name": "junction-netns-provisioner",
                                         "config": {"subnet": "10.231.0.0/16"}}}}

A namespace is deleted with its kernel (not on restart, which keeps its address). When the
server is killed, the reaper kills the kernel but leaves the namespace, named
``junction-<kernel id>``; ``ip netns del`` removes it.
"""

from __future__ import annotations

import ipaddress
import shutil
import subprocess
from typing import Any

import anyio
from jupyter_client.provisioning.local_provisioner import LocalProvisioner
from jupyter_client.provisioning.provisioner_base import KernelProvisionerBase
from traitlets import Unicode

__all__ = ["KERNEL_PORTS", "NetnsProvisioner", "namespaces"]

KERNEL_PORTS = (50001, 50002, 50003, 50004, 50005)
"""shell, iopub, stdin, heartbeat and control, the same in every kernel's namespace."""

_PREFIX = "junction-"


async def _ip(*args: str) -> str:
    """Run ``ip ARGS``; returns its output, raises RuntimeError with its message on failure."""
    command = [shutil.which("ip") or "ip", *args]
    try:
        done = await anyio.run_process(command, check=False)
    except FileNotFoundError:
        raise RuntimeError("the netns kernel provisioner needs iproute2 (the ip command)") from None
    if done.returncode != 0:
        message = done.stderr.decode(errors="replace").strip()
        raise RuntimeError(f"ip {' '.join(args)} failed: {message}")
    return done.stdout.decode(errors="replace")


class NetnsProvisioner(LocalProvisioner):
    """Launch the kernel in a network namespace of its own, reached over a veth pair."""

    subnet = Unicode(
        "10.231.0.0/16",
        config=True,
        help="IPv4 network the kernels' /30 links are taken from (the host side gets .1).",
    )

    namespace: str | None = None
    host_link: str | None = None
    kernel_ip: str | None = None

    async def pre_launch(self, **kwargs: Any) -> dict[str, Any]:
        """Make the namespace and its link, then write the connection file for its address.

        Called by ``KernelManager.pre_start_kernel`` (on restart too, when the namespace
        already exists and keeps its address).
        """
        km: Any = self.parent
        if km is None:
            raise RuntimeError("the netns kernel provisioner runs under a kernel manager")
        if self.namespace is None:
            await self._make_namespace()
        km.transport = "tcp"
        km.ip = self.kernel_ip
        km.shell_port, km.iopub_port, km.stdin_port, km.hb_port, km.control_port = KERNEL_PORTS
        extra_arguments = kwargs.pop("extra_arguments", [])
        kwargs.pop("transport_encryption", None)
        if "env" in kwargs:
            km.write_connection_file(jupyter_session=kwargs["env"].get("JPY_SESSION_NAME", ""))
        else:
            km.write_connection_file()
        self.connection_info = km.get_connection_info()
        kernel_cmd = km.format_kernel_cmd(extra_arguments=extra_arguments)
        assert self.namespace is not None
        command = [shutil.which("ip") or "ip", "netns", "exec", self.namespace, *kernel_cmd]
        # LocalProvisioner.pre_launch refuses addresses that are not this host's: skip it.
        launch: dict[str, Any] = await KernelProvisionerBase.pre_launch(self, cmd=command, **kwargs)
        return launch

    async def _make_namespace(self) -> None:
        """Create ``junction-<kernel id>`` and a veth pair with the first free /30."""
        network = ipaddress.IPv4Network(self.subnet)
        namespace = f"{_PREFIX}{self.kernel_id}"
        await _ip("netns", "add", namespace)
        try:
            for index, link in enumerate(network.subnets(new_prefix=30)):
                host_end = f"jxh{index}"
                try:
                    # Creating the pair claims the /30 atomically, across servers on the host.
                    await _ip(
                        "link", "add", host_end, "type", "veth", "peer", "name", f"jxk{index}"
                    )
                except RuntimeError:
                    continue
                host_ip, kernel_ip = (str(address) for address in link.hosts())
                await _ip("link", "set", f"jxk{index}", "netns", namespace)
                await _ip("addr", "add", f"{host_ip}/30", "dev", host_end)
                await _ip("link", "set", host_end, "up")
                inside = ("netns", "exec", namespace, shutil.which("ip") or "ip")
                await _ip(*inside, "addr", "add", f"{kernel_ip}/30", "dev", f"jxk{index}")
                await _ip(*inside, "link", "set", f"jxk{index}", "up")
                await _ip(*inside, "link", "set", "lo", "up")
                self.namespace, self.host_link, self.kernel_ip = namespace, host_end, kernel_ip
                self.log.info("kernel %s: namespace %s at %s", self.kernel_id, namespace, kernel_ip)
                return
            raise RuntimeError(f"no free /30 left in {self.subnet} for a kernel")
        except BaseException:
            await self._delete_namespace(namespace)
            raise

    async def _delete_namespace(self, namespace: str) -> None:
        # Deleting the namespace deletes its end of the pair, and so the host's end.
        with anyio.CancelScope(shield=True):
            try:
                await _ip("netns", "del", namespace)
            except RuntimeError as exc:
                self.log.warning("kernel %s: %s", self.kernel_id, exc)

    async def cleanup(self, restart: bool = False) -> None:
        """Delete the namespace, unless the kernel is restarting (it keeps its address).

        Called by the kernel manager once the kernel process has ended.
        """
        await super().cleanup(restart=restart)
        if not restart and self.namespace is not None:
            await self._delete_namespace(self.namespace)
            self.namespace = self.host_link = self.kernel_ip = None

    async def get_provisioner_info(self) -> dict[str, Any]:
        """What a server needs to reach this kernel again: the namespace and addresses."""
        info: dict[str, Any] = await super().get_provisioner_info()
        info.update(namespace=self.namespace, host_link=self.host_link, kernel_ip=self.kernel_ip)
        return info

    async def load_provisioner_info(self, provisioner_info: dict[str, Any]) -> None:
        """Take back what :meth:`get_provisioner_info` stored."""
        await super().load_provisioner_info(provisioner_info)
        self.namespace = provisioner_info.get("namespace")
        self.host_link = provisioner_info.get("host_link")
        self.kernel_ip = provisioner_info.get("kernel_ip")


def namespaces() -> list[str]:
    """The network namespaces this provisioner made that exist now (for operators, tests)."""
    done = subprocess.run(
        [shutil.which("ip") or "ip", "netns", "list"],
        capture_output=True,
        text=True,
        check=False,
    )
    return [line.split()[0] for line in done.stdout.splitlines() if line.startswith(_PREFIX)]
