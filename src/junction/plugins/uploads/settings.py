"""Settings of the uploads plugin (the ``[uploads]`` section)."""

from __future__ import annotations

from pathlib import Path

from pydantic import Field

from junction.plugin import PluginSettings

__all__ = ["UploadsSettings"]


class UploadsSettings(PluginSettings):
    """Where partial uploads wait, how large they may be, and how long they are kept."""

    directory: Path | None = Field(
        None,
        description="Where partial uploads are written (a private 0700 folder). Unset: "
        "'uploads' in Junction's data directory (<jupyter data dir>/junction/uploads). On the "
        "root's filesystem a completed upload is moved into place with one rename; elsewhere "
        "it is copied beside its destination first.",
    )
    max_size: int = Field(
        16 << 30,
        ge=0,
        description="The largest upload in bytes (Tus-Max-Size); a larger Upload-Length gets 413.",
    )
    max_uploads_per_user: int | None = Field(
        20,
        ge=1,
        description="Unfinished uploads one user may have at once; another gets 403. None: no "
        "limit.",
    )
    max_bytes_per_user: int | None = Field(
        32 << 30,
        ge=0,
        description="Bytes one user's unfinished uploads may declare together (their "
        "Upload-Length); an upload beyond gets 403. None: no limit.",
    )
    expire_after: float = Field(
        86400.0,
        gt=0,
        description="Seconds an upload is kept after its last PATCH (Upload-Expires); then its "
        "partial file and record are deleted. Completed uploads are forgotten as long after "
        "their completion.",
    )
    expire_every: float = Field(
        300.0, gt=0, description="Seconds between two sweeps for expired uploads."
    )
