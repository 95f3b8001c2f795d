"""Values of the uploads API: an upload as recorded, and what creating one asks for."""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["NewUpload", "Upload"]


@dataclass(frozen=True, slots=True)
class NewUpload:
    """What ``POST /api/uploads`` asks for, from its tus headers.

    ``destination`` is an API path (relative to the root, ``/``-separated); ``metadata`` is
    the raw ``Upload-Metadata`` header, given back by ``HEAD`` as the protocol asks.
    """

    length: int
    destination: str
    overwrite: bool = False
    metadata: str = ""


@dataclass(frozen=True, slots=True)
class Upload:
    """One resumable upload: its bytes so far (``offset``) of ``length``, and its deadline.

    States: receiving (``offset < length``) -> complete (``completed`` set: the file was
    moved into place at ``destination``). Either ends when ``expires`` (Unix time) passes
    or its owner terminates it.
    """

    id: str
    owner: str
    destination: str
    length: int
    offset: int
    overwrite: bool
    metadata: str
    created: float
    expires: float
    completed: float | None = None

    @property
    def is_complete(self) -> bool:
        """Whether every byte arrived and the file is in place."""
        return self.completed is not None
