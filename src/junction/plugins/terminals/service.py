"""The terminals service contract, used by the terminals routes and by other plugins.

The frontend reads :data:`TERMINALS` as an optional service to tell JupyterLab whether
terminals are available. Implementations live elsewhere in this package; this module holds
only the Protocol, its key and the errors it raises.
"""

from __future__ import annotations

from typing import Protocol

from junction.errors import NotFound
from junction.plugin import ServiceKey
from junction.plugins.terminals.models import Terminal

__all__ = ["TERMINALS", "TerminalNotFound", "TerminalService"]


class TerminalNotFound(NotFound):
    """No running terminal has this name."""

    def __init__(self, name: str) -> None:
        super().__init__(f"Terminal not found: {name}")
        self.name = name


class TerminalService(Protocol):
    """Starts, tracks and stops terminals. Provided by the terminals plugin as :data:`TERMINALS`."""

    async def create(self, *, name: str | None = None, cwd: str | None = None) -> Terminal:
        """Start a shell on a new PTY and return its model.

        ``name`` defaults to the lowest free integer; ``cwd`` is relative to the server root
        (or absolute inside it) and defaults to the root. Raises
        :class:`~junction.errors.BadRequest` for a bad name or a ``cwd`` outside the root or
        missing, :class:`~junction.errors.Conflict` when the name is taken,
        :class:`~junction.errors.Forbidden` when ``max_terminals`` terminals run already.
        """
        ...

    async def get(self, name: str) -> Terminal:
        """Return the model of a running terminal; raises :class:`TerminalNotFound`."""
        ...

    async def list(self) -> list[Terminal]:
        """Return every running terminal."""
        ...

    def exists(self, name: str) -> bool:
        """Whether a terminal with this name is running."""
        ...

    async def terminate(self, name: str) -> None:
        """Kill a terminal's process group and forget it; raises :class:`TerminalNotFound`."""
        ...


TERMINALS: ServiceKey[TerminalService] = ServiceKey("terminals")
