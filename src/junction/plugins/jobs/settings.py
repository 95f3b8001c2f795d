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
    include_hidden: bool = Field(
        False, description="Include hidden files and folders (names starting with '.')."
    )
