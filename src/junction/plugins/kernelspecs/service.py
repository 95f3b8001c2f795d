"""The kernel specs service contract, used by the kernelspecs routes and the kernels plugin.

Implementations live elsewhere in this package; this module holds only the Protocol, its key,
the value handed to kernel launchers and the errors.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from junction.errors import NotFound
from junction.plugin import ServiceKey
from junction.plugins.kernelspecs.models import KernelSpec, KernelSpecList

__all__ = [
    "KERNELSPECS",
    "InstalledKernelSpec",
    "KernelSpecNotFound",
    "KernelSpecResourceNotFound",
    "KernelSpecService",
]


class KernelSpecNotFound(NotFound):
    """No installed kernel spec has this name."""

    def __init__(self, name: str) -> None:
        super().__init__(f"No such kernel named {name}", reason="No such kernel")
        self.spec_name = name


class KernelSpecResourceNotFound(NotFound):
    """A kernel spec has no resource file (logo, kernel.js) of this name."""

    def __init__(self, name: str, path: str) -> None:
        super().__init__(f"Kernel spec {name} has no resource {path}")


@dataclass(frozen=True, slots=True)
class InstalledKernelSpec:
    """What a launcher needs: the spec's name, its ``kernel.json`` content and its directory.

    ``spec`` is never mutated by the service; launchers copy what they change.
    """

    name: str
    spec: dict[str, Any]
    resource_dir: Path


class KernelSpecService(Protocol):
    """Lists the installed kernel specs. Provided by the kernelspecs plugin as
    :data:`KERNELSPECS`."""

    @property
    def default_name(self) -> str:
        """The spec used when a client starts a kernel without naming one."""
        ...

    def set_default(self, name: str) -> None:
        """Make ``name`` the default spec reported by ``/api/kernelspecs``.

        Called once at startup by the plugin that starts kernels (kernels, from its
        ``default_kernel_name`` setting), so the default reported is the one it uses.
        """
        ...

    async def list(self) -> KernelSpecList:
        """Every installed spec, keyed by name, with the default's name."""
        ...

    async def get(self, name: str) -> KernelSpec:
        """One spec's wire model; raises :class:`KernelSpecNotFound`."""
        ...

    async def find(self, name: str) -> InstalledKernelSpec:
        """The spec a kernel of this name is launched from; raises :class:`KernelSpecNotFound`.

        Called by kernel launchers on every start; a spec installed a moment ago is found.
        """
        ...

    async def resource(self, name: str, path: str) -> Path:
        """The file ``path`` inside a spec's directory (a logo, ``kernel.js``).

        Raises :class:`KernelSpecNotFound` or :class:`KernelSpecResourceNotFound`, also for
        paths that would leave the directory.
        """
        ...


KERNELSPECS: ServiceKey[KernelSpecService] = ServiceKey("kernelspecs")
