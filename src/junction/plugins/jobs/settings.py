"""Settings of the jobs plugin (the ``[jobs]`` section)."""

from __future__ import annotations

from pathlib import Path

from pydantic import Field

from junction.plugin import PluginSettings

__all__ = ["JobsSettings"]


class JobsSettings(PluginSettings):
    """How many jobs run at once and where their files go."""

    max_running: int = Field(2, ge=1, description="Jobs running at once; more wait (pending).")
    directory: Path | None = Field(
        None,
        description="Where archives are written until downloaded. Unset: 'jobs' in "
        "Junction's data directory (<jupyter data dir>/junction/jobs).",
    )
    keep_days: float = Field(
        7.0,
        gt=0,
        description="Days an ended job (and its archive) is kept after it ended; older ones "
        "are forgotten, checked hourly.",
    )
    max_jobs_per_user: int | None = Field(
        50,
        ge=1,
        description="Jobs one user may have at once: pending, running and kept (ended ones "
        "until keep_days pass or the user discards them); another gets 403. None: no limit.",
    )
    max_bytes_per_user: int | None = Field(
        10 << 30,
        ge=0,
        description="Bytes of archives one user's kept zip jobs may hold; a zip job beyond "
        "gets 403 at submission, or fails once its folder turns out too big. None: no limit.",
    )
    include_hidden: bool = Field(
        False, description="Include hidden files and folders (names starting with '.')."
    )
