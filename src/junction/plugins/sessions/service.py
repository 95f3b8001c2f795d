"""The sessions contracts: the service other code uses, the store it keeps records in, its errors.

A session binds a document (``path``) to a kernel. Two interfaces live here:

- :class:`SessionService` (key :data:`SESSIONS`): what routes and other plugins call. It owns
  the rules (one session per path, kernels started and shut down with their sessions).
- :class:`SessionStore`: where session *records* are kept. A record holds only the kernel's id;
  the kernel's model is read live from the kernels service every time a session is shown.

Implementations live elsewhere in this package (``manager.py``, ``memory.py``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol

from junction.errors import Gone, HTTPError, NotFound
from junction.plugin import ServiceKey
from junction.plugins.sessions.models import Session

__all__ = [
    "SESSIONS",
    "KernelGone",
    "KernelUnavailable",
    "SessionNotFound",
    "SessionRecord",
    "SessionService",
    "SessionStore",
]


class SessionNotFound(NotFound):
    """No session has this id, or its kernel is gone (the session was dropped)."""

    def __init__(self, session_id: str) -> None:
        super().__init__(f"Session not found: session_id={session_id!r}")
        self.session_id = session_id


class KernelGone(Gone):
    """The session's kernel was shut down or culled before the session was deleted."""

    def __init__(self, session_id: str, kernel_id: str) -> None:
        super().__init__("Kernel deleted before session")
        self.session_id = session_id
        self.kernel_id = kernel_id


class KernelUnavailable(HTTPError):
    """A session asked for a kernel that cannot be had: unknown spec, or it failed to start.

    Jupyter clients expect ``501`` with a ``short_message`` beside ``message`` here (the wire
    contract, §5); ``reason`` carries the same short text.
    """

    status_code = 501
    default_reason = "Not Implemented"

    def __init__(self, message: str, short_message: str) -> None:
        super().__init__(message, reason=short_message)
        self.short_message = short_message

    def body(self) -> dict[str, Any]:
        """The error body with the ``short_message`` Jupyter clients read."""
        return {**super().body(), "short_message": self.short_message}


@dataclass(frozen=True, slots=True)
class SessionRecord:
    """What a store keeps for one session. ``name`` may be None, as clients may omit it."""

    id: str
    path: str
    name: str | None
    type: str
    kernel_id: str


class SessionStore(Protocol):
    """Keeps session records. Called only by the session service, never by routes.

    Stores do no validation and know nothing of kernels; every method is atomic on its own.
    """

    async def add(self, record: SessionRecord) -> None:
        """Keep a new record; its id is new (the service makes a fresh UUID)."""
        ...

    async def get(self, session_id: str) -> SessionRecord | None:
        """Return the record with this id, or None."""
        ...

    async def find(self, *, path: str) -> SessionRecord | None:
        """Return the record for a document path, or None."""
        ...

    async def with_kernel(self, kernel_id: str) -> list[SessionRecord]:
        """Return the records of every session using this kernel (sessions may share one)."""
        ...

    async def replace(self, record: SessionRecord) -> None:
        """Overwrite the record that has ``record.id``; a missing id is ignored."""
        ...

    async def remove(self, session_id: str) -> None:
        """Forget a record; a missing id is ignored."""
        ...

    # Defined last: below it, in this class, ``list`` would name the method, not the type.
    async def list(self) -> list[SessionRecord]:
        """Return every record, oldest first."""
        ...


class SessionService(Protocol):
    """Creates, finds, changes and deletes sessions. Provided by the sessions plugin.

    A session whose kernel has gone away (shut down through ``/api/kernels``, culled, or lost)
    is never shown with a stale kernel: :meth:`list` leaves it out and :meth:`get` and
    :meth:`update` raise :class:`SessionNotFound`, and the record is dropped when first seen
    so. :meth:`delete` of such a session raises :class:`KernelGone` (and drops it too).
    """

    async def create(
        self,
        *,
        path: str,
        type: str,
        name: str | None = None,
        kernel_name: str | None = None,
        kernel_id: str | None = None,
    ) -> tuple[Session, bool]:
        """Return the session for ``path``, creating it when there is none.

        The flag is True when a session was created. An existing session for the path is
        returned unchanged. A new one attaches kernel ``kernel_id`` when that kernel runs,
        else starts a kernel of spec ``kernel_name`` (the default spec when None), under
        ``kernel_id`` if given. Raises :class:`KernelUnavailable` for an unknown spec, and
        the kernels service's :class:`~junction.plugins.kernels.service.KernelStartFailed`.
        """
        ...

    async def get(self, session_id: str) -> Session:
        """Return a session with its live kernel model; raises :class:`SessionNotFound`."""
        ...

    async def list(self) -> list[Session]:
        """Return every session whose kernel still runs."""
        ...

    async def update(
        self,
        session_id: str,
        *,
        path: str | None = None,
        name: str | None = None,
        type: str | None = None,
        kernel_id: str | None = None,
        kernel_name: str | None = None,
    ) -> Session:
        """Change a session; arguments left None stay as they are.

        ``kernel_id`` attaches a running kernel (raises
        :class:`~junction.errors.BadRequest` when there is none); otherwise ``kernel_name``
        starts a new kernel (raises :class:`KernelUnavailable` when it cannot). Either way
        the old kernel is shut down unless another session still uses it. Raises
        :class:`SessionNotFound`.
        """
        ...

    async def delete(self, session_id: str) -> None:
        """Forget a session and shut its kernel down unless another session uses it.

        Raises :class:`SessionNotFound`, or :class:`KernelGone` when its kernel had already
        gone (the session is forgotten all the same).
        """
        ...


SESSIONS: ServiceKey[SessionService] = ServiceKey("sessions")
