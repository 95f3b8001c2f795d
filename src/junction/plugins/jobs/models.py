"""Wire models of the jobs API."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

__all__ = ["FINISHED", "JOB_KINDS", "Job", "JobStatus", "NewJob", "Progress"]

JobStatus = Literal["pending", "running", "completed", "failed", "cancelled"]
"""``pending`` (waiting for a free slot) -> ``running`` -> ``completed`` | ``failed`` |
``cancelled``. The last three are final."""

FINISHED: frozenset[str] = frozenset({"completed", "failed", "cancelled"})
"""The final states."""

JOB_KINDS = ("zip", "copy")
"""``zip``: a folder as a zip archive to download; ``copy``: a folder copied to a new path."""


class Progress(BaseModel):
    """How far a job has come, in ``unit``; ``total`` is None until it is known."""

    done: int = Field(description="Units done so far.")
    total: int | None = Field(None, description="Units in all, once known.")
    unit: Literal["bytes"] = "bytes"


class Job(BaseModel):
    """One long-running request, kept in the database."""

    id: str
    kind: str = Field(description="What the job does: zip or copy.")
    status: JobStatus
    path: str = Field(description="The folder the job works on (relative to the root).")
    to: str | None = Field(None, description="Where a copy goes.")
    created: str = Field(description="ISO 8601, UTC.")
    updated: str = Field(description="ISO 8601, UTC: the last change of status.")
    progress: Progress
    error: str | None = Field(None, description="Why a job failed or was cancelled.")
    result: dict[str, Any] | None = Field(
        None,
        description="What a completed job made: for zip, the archive's name, size, entries "
        "and the URL to download it from.",
    )


class NewJob(BaseModel):
    """The body of ``POST /api/jobs``."""

    model_config = ConfigDict(extra="forbid")

    kind: Literal["zip", "copy"] = Field(description="zip or copy.")
    path: str = Field(description="The folder to archive or copy, relative to the root.")
    to: str | None = Field(
        None, description="copy only: the new folder's path; it must not exist yet."
    )
