"""The jobs contract: :class:`JobService` (key :data:`JOBS`) and its errors.

A job is a request too long for one HTTP exchange (archiving or copying a large folder,
exporting or running a notebook). It is
submitted, runs in the background with a bounded number of others, reports progress, and ends
``completed``, ``failed`` (with a reason) or ``cancelled``. Its record is kept in the database,
so it survives a restart; a job that was running when the server stopped is marked failed.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import NamedTuple, Protocol

from junction.childenv import RunAs
from junction.errors import Conflict, NotFound
from junction.plugin import ServiceKey
from junction.plugins.jobs.models import Job, NewJob

__all__ = ["JOBS", "JobFinished", "JobNotFound", "JobService", "NoResult", "ResultFile"]


class JobNotFound(NotFound):
    """No job has this id (or it belongs to another user)."""

    def __init__(self, job_id: str) -> None:
        super().__init__(f"No such job: {job_id}")


class JobFinished(Conflict):
    """The job has already ended, so it cannot be cancelled."""

    def __init__(self, job: Job) -> None:
        super().__init__(f"Job {job.id} has already ended ({job.status})")


class NoResult(Conflict):
    """The job has no file to download: it is not completed, or it makes none."""


class ResultFile(NamedTuple):
    """The file a completed job made for download: where it is, its name, its media type."""

    path: Path
    name: str
    media_type: str


class JobService(Protocol):
    """Submit, follow and cancel jobs. Every method may raise ``DatabaseUnavailable``."""

    async def submit(self, request: NewJob, owner: str, account: RunAs | None = None) -> Job:
        """Check ``request`` and queue the job; raises ``BadRequest``, ``NotFound`` (no such
        folder or notebook), ``Conflict`` (the destination exists), ``Forbidden`` (the
        owner's quota of jobs or stored bytes is used up) or ``ServiceUnavailable`` (nbconvert
        or nbclient is not installed). A ``run`` job's kernel runs as ``account`` when given
        (``users.unix_accounts``), else as the server's account."""
        ...

    async def get(self, job_id: str, owner: str | None = None) -> Job:
        """The job now; ``owner`` (None: anyone's) limits it to one user's jobs. Raises
        :class:`JobNotFound`."""
        ...

    async def list(self, owner: str | None = None) -> list[Job]:
        """Jobs, newest first; ``owner`` (None: everyone's) limits them to one user's."""
        ...

    async def cancel(self, job_id: str, owner: str | None = None) -> Job:
        """Stop a pending or running job and return it once it has stopped. Raises
        :class:`JobNotFound`, or :class:`JobFinished` when it has already ended."""
        ...

    async def discard(self, job_id: str, owner: str | None = None) -> None:
        """Forget a job and delete the files it made (a zip job's archive), cancelling it
        first if it has not ended. Raises :class:`JobNotFound`."""
        ...

    def watch(self, job_id: str, owner: str | None = None) -> AsyncIterator[Job]:
        """The job now, then again whenever it changes, until it has ended."""
        ...

    async def result_file(self, job_id: str, owner: str | None = None) -> ResultFile:
        """The file a completed job made for download (a zip job's archive, an export's
        file when it had no ``to``); raises :class:`NoResult`."""
        ...


JOBS: ServiceKey[JobService] = ServiceKey("jobs")
