"""Settings of the collaboration plugin (section ``[collaboration]``)."""

from __future__ import annotations

from pydantic import Field

from junction.plugin import PluginSettings

__all__ = ["CollaborationSettings"]


class CollaborationSettings(PluginSettings):
    """How long rooms live, how often they save and look at the disk, and their limits."""

    document_cleanup_delay: float = Field(
        60.0, ge=0, description="Seconds a room stays open after its last client left."
    )
    document_save_delay: float = Field(
        1.0, ge=0, description="Seconds after the last change before the room saves its file."
    )
    file_poll_interval: float = Field(
        1.0, gt=0, description="Seconds between checks of an open room's file for outside changes."
    )
    max_update_size: int = Field(
        16 * 1024 * 1024,
        gt=0,
        description="Largest WebSocket message (bytes) a client may send to a room; a client "
        "sending more is disconnected (close code 1009) and its message dropped.",
    )
    server_side_execution: bool = Field(
        True,
        description="Run cells on the server, which writes their outputs into the shared "
        "document (page config serverSideExecution); needs the kernels plugin. When false, "
        "the browser runs cells on its own kernel connection.",
    )
    record_timing: bool | None = Field(
        None,
        description="Write execution timings into the metadata of cells run on the server "
        "(metadata.execution, as JupyterLab does with recordTiming). Unset: follow the "
        "notebook setting recordTiming of the lab settings (@jupyterlab/notebook-extension:"
        "tracker); true or false: always or never.",
    )
    room_lease_seconds: float = Field(
        15.0,
        gt=0,
        description="Seconds a server's ownership of an open room lasts unless renewed (every "
        "third of it): with several servers on one database, one owns each room; another "
        "takes it only once the owner closed it or stopped renewing.",
    )
    checkpoint_every: int = Field(
        100,
        gt=1,
        description="Stored updates of a room merged into one checkpoint after this many.",
    )
