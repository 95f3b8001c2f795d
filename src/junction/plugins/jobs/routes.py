"""HTTP routes of the jobs API: submit, list, read, cancel, follow, download."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Annotated

import anyio
from fastapi import APIRouter, Request, Response
from fastapi.responses import FileResponse, StreamingResponse
from starlette.requests import HTTPConnection

from junction.auth.middleware import current_user
from junction.childenv import run_as
from junction.errors import Forbidden
from junction.plugin import use
from junction.plugins.contents.service import CONTENTS, HiddenPathRefused, Reach, check_path
from junction.plugins.jobs.folders import real_api_path
from junction.plugins.jobs.models import Job, NewJob
from junction.plugins.jobs.service import JOBS, JobService
from junction.services import AUTH

__all__ = ["router"]

router = APIRouter(tags=["jobs"])

Jobs = Annotated[JobService, use(JOBS)]

_NOT_FOUND: dict[int | str, dict[str, str]] = {404: {"description": "No such job"}}


def _owner(conn: HTTPConnection) -> str | None:
    """Whose jobs the caller sees: everyone's in single-user mode or for admins."""
    auth = conn.app.state.services.get(AUTH)
    user = current_user(conn.scope)
    if auth.identity is None or user.admin:
        return None
    return str(user.username)


def _check_contents(conn: HTTPConnection, action: str, resource: str = "contents") -> None:
    """In multi-user mode, jobs read (and copies write) files: the caller needs that right
    (and a run job the right to execute kernels, an export the right to read nbconvert)."""
    auth = conn.app.state.services.get(AUTH)
    if auth.identity is None:
        return
    if not auth.authorizer.is_authorized(current_user(conn.scope), action, resource):
        raise Forbidden(f"Not allowed to {action} {resource}")


def _check_hidden(conn: HTTPConnection, path: str) -> None:
    """Refuse (400) to write a hidden file or into a hidden folder, as the contents API
    does unless its ``allow_hidden`` is on."""
    contents = conn.app.state.services.get_optional(CONTENTS)
    if contents is not None and contents.settings.allow_hidden:
        return
    if any(part.startswith(".") and part not in (".", "..") for part in path.split("/")):
        raise HiddenPathRefused(f"cannot write to hidden file or directory {path!r}")


async def _check_real(conn: HTTPConnection, path: str, action: str) -> None:
    """Check the path ``path`` really leads to (links followed) as the path itself was."""
    root = conn.app.state.settings.root_dir
    real = await anyio.to_thread.run_sync(real_api_path, root, path)
    if real is None or real == path.strip("/"):
        return  # outside the root: the job refuses it (404)
    if action == "write":
        _check_hidden(conn, real)
    if await check_path(conn, real, action) is not Reach.FULL:
        raise Forbidden(f"Not allowed to {action} all of {path or 'the root folder'}")


@router.post(
    "/api/jobs",
    status_code=202,
    responses={
        404: {"description": "No such folder or notebook"},
        403: {"description": "Not allowed to read the folder, or the user's job quota is used up"},
        409: {"description": "The destination exists"},
        503: {"description": "nbconvert (export) or nbclient (run) is not installed"},
    },
)
async def submit_job(request: Request, body: NewJob, jobs: Jobs, response: Response) -> Job:
    """Start a job: ``zip`` archives a folder for download, ``copy`` copies it to ``to``,
    ``export`` exports a notebook with nbconvert, ``run`` runs one headless.

    Always answered ``202 Accepted`` with the job and its URL in ``Location``, never with
    the job's result: follow it with ``GET``, or its ``events``.
    """
    _check_contents(request, "read")
    if body.to is not None:
        _check_hidden(request, body.to)
    if await check_path(request, body.path, "read") is not Reach.FULL:
        raise Forbidden(f"Not allowed to read all of {body.path or 'the root folder'}")
    if body.kind == "export":
        _check_contents(request, "read", "nbconvert")
    if body.kind == "run":
        _check_contents(request, "execute", "kernels")
    if body.kind == "copy" or body.to is not None:
        _check_contents(request, "write")
        await check_path(request, body.to or "", "write")
    # A link (in one's own home, say) may lead elsewhere: where it leads is checked too.
    await _check_real(request, body.path, "read")
    if body.to is not None:
        await _check_real(request, body.to, "write")
    # Notebook workers that write under the root run as the user's account (as kernels do).
    writes = body.kind == "run" or (body.kind == "export" and body.to is not None)
    account = await run_as() if writes else None
    job = await jobs.submit(body, owner=current_user(request.scope).username, account=account)
    response.headers["Location"] = f"{request.app.state.settings.base_url}api/jobs/{job.id}"
    return job


@router.get("/api/jobs")
async def list_jobs(request: Request, jobs: Jobs) -> list[Job]:
    """The caller's jobs (everyone's for admins), newest first."""
    return await jobs.list(_owner(request))


@router.get("/api/jobs/{job_id}", responses=_NOT_FOUND)
async def get_job(request: Request, job_id: str, jobs: Jobs) -> Job:
    """A job's status, progress, error or result."""
    return await jobs.get(job_id, _owner(request))


@router.delete(
    "/api/jobs/{job_id}",
    status_code=204,
    responses={
        **_NOT_FOUND,
        409: {"description": "The job has already ended (without discard)"},
    },
)
async def cancel_job(request: Request, job_id: str, jobs: Jobs, discard: bool = False) -> Response:
    """Cancel a pending or running job; answers once it has stopped.

    With ``?discard=true``, forget the job, ended or not, and delete its archive: the way
    to free one's quota (``jobs.max_jobs_per_user``, ``jobs.max_bytes_per_user``).
    """
    if discard:
        await jobs.discard(job_id, _owner(request))
    else:
        await jobs.cancel(job_id, _owner(request))
    return Response(status_code=204)


@router.get(
    "/api/jobs/{job_id}/events",
    responses={
        **_NOT_FOUND,
        200: {"content": {"text/event-stream": {}}, "description": "The job at each change"},
    },
    response_class=StreamingResponse,
)
async def job_events(request: Request, job_id: str, jobs: Jobs) -> StreamingResponse:
    """Server-sent events: the job as JSON now and at each change, until it ends."""
    updates = jobs.watch(job_id, _owner(request))
    first = await anext(updates)  # raises JobNotFound before the response starts

    async def stream() -> AsyncIterator[bytes]:
        yield b"data: " + first.model_dump_json().encode() + b"\n\n"
        async for job in updates:
            yield b"data: " + job.model_dump_json().encode() + b"\n\n"

    # X-Accel-Buffering: nginx would otherwise hold events back until its buffer fills.
    headers = {"Cache-Control": "no-store", "X-Accel-Buffering": "no"}
    return StreamingResponse(stream(), media_type="text/event-stream", headers=headers)


@router.get(
    "/api/jobs/{job_id}/result",
    responses={
        **_NOT_FOUND,
        200: {
            "content": {"application/zip": {}, "application/octet-stream": {}},
            "description": "The archive, or the exported file (its own media type)",
        },
        409: {"description": "The job has no file (not completed, or it made none to keep)"},
    },
    response_class=FileResponse,
)
async def job_result(request: Request, job_id: str, jobs: Jobs) -> FileResponse:
    """Download the archive a completed ``zip`` job made, or the file of an ``export``
    job without ``to``."""
    path, name, media_type = await jobs.result_file(job_id, _owner(request))
    return FileResponse(path, media_type=media_type, filename=name)
