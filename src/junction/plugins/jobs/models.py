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

JOB_KINDS = ("zip", "copy", "export", "run")
"""``zip``: a folder as a zip archive to download; ``copy``: a folder copied to a new path;
``export``: a notebook exported by nbconvert; ``run``: a notebook run headless in a fresh
kernel and written with its outputs."""


class Progress(BaseModel):
    """How far a job has come, in ``unit``; ``total`` is None until it is known."""

    done: int = Field(description="Units done so far.")
    total: int | None = Field(None, description="Units in all, once known.")
    unit: Literal["bytes", "cells"] = Field(
        "bytes", description="cells for run jobs (every cell counts, code or not); else bytes."
    )


class Job(BaseModel):
    """One long-running request, kept in the database."""

    id: str
    kind: str = Field(description="What the job does: zip, copy, export or run.")
    status: JobStatus
    path: str = Field(
        description="The folder (zip, copy) or notebook (export, run) the job works on, "
        "relative to the root."
    )
    to: str | None = Field(None, description="Where a copy, an export or a run notebook goes.")
    created: str = Field(description="ISO 8601, UTC.")
    updated: str = Field(description="ISO 8601, UTC: the last change of status.")
    progress: Progress
    error: str | None = Field(None, description="Why a job failed or was cancelled.")
    result: dict[str, Any] | None = Field(
        None,
        description="What a completed job made: for zip (and an export without 'to'), the "
        "file's name, size and the URL to download it from; for run, the cells.",
    )


class NewJob(BaseModel):
    """The body of ``POST /api/jobs``."""

    model_config = ConfigDict(extra="forbid")

    kind: Literal["zip", "copy", "export", "run"] = Field(description="zip, copy, export or run.")
    path: str = Field(
        description="The folder to archive or copy, or the notebook to export or run, "
        "relative to the root."
    )
    to: str | None = Field(
        None,
        description="copy: the new folder's path (required; it must not exist yet). export: "
        "the file to write (optional; without it the export is kept for download). run: the "
        "notebook to write with the outputs (required). An existing file is refused unless "
        "overwrite is set.",
    )
    format: str | None = Field(
        None,
        description="export only (required): html, script, markdown, rst, notebook or asciidoc.",
    )
    kernel_name: str | None = Field(
        None,
        description="run only: the kernel spec to run the notebook with. Unset: the "
        "notebook's own (its metadata), else python3.",
    )
    timeout: int | None = Field(
        None,
        ge=1,
        description="run only: seconds one cell may run (waiting for output); past it the "
        "job fails. Unset: no limit.",
    )
    overwrite: bool = Field(False, description="export and run: replace 'to' if it exists.")
