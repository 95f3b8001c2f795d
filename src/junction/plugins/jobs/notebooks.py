"""The ``export`` and ``run`` jobs: notebooks exported by nbconvert, or run headless.

Both check their paths when submitted (a notebook file under the root; a destination whose
folder is under the root) and then run :mod:`~junction.plugins.jobs.notebook_worker` in a
process of its own, which :func:`run_worker` starts and follows: its events become the
job's progress, and a cancelled job asks it to stop (it interrupts and shuts its kernel down),
then kills it and its kernel if it has not stopped within :data:`STOP_WAIT` seconds.
"""

from __future__ import annotations

import contextlib
import importlib.util
import logging
import os
import re
import signal
import stat
import subprocess
import sys
from pathlib import Path
from typing import Any

import anyio
import orjson
from anyio.streams.buffered import BufferedByteReceiveStream

from junction.childenv import RunAs, child_environment
from junction.errors import BadRequest, Conflict, NotFound, ServiceUnavailable
from junction.plugins.jobs.folders import (
    Cancelled,
    Guard,
    Reporter,
    api_parts,
    judge_open,
    open_folder,
)

__all__ = [
    "EXPORT_FORMATS",
    "STOP_WAIT",
    "WorkerFailed",
    "check_available",
    "check_kernel_name",
    "resolve_notebook",
    "resolve_target",
    "run_worker",
]

log = logging.getLogger("junction.jobs")

EXPORT_FORMATS = ("html", "script", "markdown", "rst", "notebook", "asciidoc")
"""nbconvert's exporters an ``export`` job offers: those that need neither LaTeX nor a
browser. Only these names ever reach nbconvert (which would import a dotted name)."""

STOP_WAIT = 8.0
"""Seconds a cancelled worker has to stop its kernel before both are killed."""

_KERNEL_NAME = re.compile(r"[A-Za-z0-9._-]{1,100}")
_MAX_EVENT = 1 << 20
_STDERR_KEPT = 4000
_MAX_COUNT = 10_000_000
_NAME = re.compile(r"[^/\0]{1,255}")
_MEDIA_TYPE = re.compile(r"[A-Za-z0-9!#$&^_.+-]{1,64}/[A-Za-z0-9!#$&^_.+-]{1,64}")


class WorkerFailed(Exception):
    """The worker reported why the job failed (or died); the message is the job's error."""


def check_available(kind: str) -> None:
    """Raise ``ServiceUnavailable`` when the libraries a ``kind`` job needs are missing."""
    needed = "nbconvert" if kind == "export" else "nbclient"
    if importlib.util.find_spec(needed) is None:
        raise ServiceUnavailable(f"{kind} jobs need {needed}: pip install {needed}")


def check_kernel_name(name: str) -> None:
    """Refuse (``BadRequest``) a kernel name that is malformed or names no kernel spec."""
    if not _KERNEL_NAME.fullmatch(name):
        raise BadRequest(f"invalid kernel name: {name[:100]!r}")
    from jupyter_client.kernelspec import KernelSpecManager, NoSuchKernel

    try:
        KernelSpecManager().get_kernel_spec(name)
    except NoSuchKernel:
        raise BadRequest(f"no kernel named {name!r}") from None


def resolve_notebook(root: Path, api_path: str, guard: Guard | None = None) -> Path:
    """The real notebook file of an API path under ``root``, opened and judged by ``guard``
    (multi-user mode) where it really is; raises ``BadRequest``, ``NotFound`` or the guard's
    errors. The worker reads it only if it is still there (no link swapped in since).
    Called in a worker thread."""
    parts = api_parts(api_path)
    if not parts:
        raise BadRequest(f"invalid path: {api_path!r}")
    path = root.joinpath(*parts)
    shown = api_path.strip("/")
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
    except OSError:
        raise NotFound(f"No such file: {shown}") from None
    try:
        real = judge_open(root, fd, shown, guard, "read", fallback=path)
        info = os.fstat(fd)
    finally:
        os.close(fd)
    if not stat.S_ISREG(info.st_mode):
        raise BadRequest(f"not a file: {shown}")
    if real.suffix != ".ipynb":
        raise BadRequest(f"not a notebook (.ipynb): {shown}")
    return real


def resolve_target(
    root: Path, api_path: str, *, overwrite: bool, guard: Guard | None = None
) -> Path:
    """Where a job writes a file: its folder must be under ``root`` (and, with ``guard``,
    the file within the user's reach for writing, judged where the folder really is); the
    file must not exist unless ``overwrite``, and never be a folder or a symbolic link.
    Returns the real path (no link in it) the worker checks again before it writes. Raises
    ``BadRequest``, ``NotFound`` (no such folder), ``Conflict`` or the guard's errors.
    Called in a worker thread."""
    parts = api_parts(api_path)
    if not parts:
        raise BadRequest(f"invalid path: {api_path!r}")
    shown = api_path.strip("/")
    held = open_folder(
        root, "/".join(parts[:-1]), guard, action="write", entry=parts[-1], shown=shown
    )
    try:
        try:
            info: os.stat_result | None = os.stat(parts[-1], dir_fd=held.fd, follow_symlinks=False)
        except FileNotFoundError:
            info = None
    finally:
        os.close(held.fd)
    if info is not None and (stat.S_ISLNK(info.st_mode) or stat.S_ISDIR(info.st_mode)):
        raise Conflict(f"{shown} exists and is not a file")
    if info is not None and not overwrite:
        raise Conflict(f"{shown} already exists (send overwrite: true to replace it)")
    return held.real / parts[-1]


def partial_name(target: Path, job_id: str) -> Path:
    """The hidden name a job writes ``target`` under before renaming it into place."""
    return target.with_name(f".{target.name}.part-{job_id}")


async def run_worker(
    request: dict[str, Any], reporter: Reporter, *, account: RunAs | None = None
) -> dict[str, Any]:
    """Run the worker on ``request`` and return its result.

    Its progress goes to ``reporter``, whose cancel flag stops it. Raises
    :class:`~junction.plugins.jobs.folders.Cancelled` (cancelled, or the calling task was)
    or :class:`WorkerFailed`. The worker, and a kernel it leaves behind, never outlive it.
    """
    # -I: isolated, so nothing in the notebook's folder (or PYTHON* variables) is imported;
    # the worker learns its folders from the request, and a run's kernel starts there.
    argv = [sys.executable, "-I", "-m", "junction.plugins.jobs.notebook_worker"]
    env = child_environment()
    options: dict[str, Any] = {}
    if account is not None:  # the kernel runs users' code: as their account, like kernels
        env.update(account.environment())
        options = account.popen_options()
    process = await anyio.open_process(
        [*argv, orjson.dumps(request).decode()],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=env,
        cwd="/",
        # Its own session: a Ctrl-C at the server's terminal is the server's alone, and
        # killing the worker's group never reaches anything else.
        start_new_session=True,
        **options,
    )
    # Only a run has something to stop cleanly (its kernel); an export is killed at once.
    graceful = request["kind"] == "run"
    state: dict[str, Any] = {
        "kernel": None,
        "result": None,
        "error": None,
        "stderr": b"",
        "graceful": graceful,
    }
    try:
        async with anyio.create_task_group() as group:
            group.start_soon(_drain, process, state)
            group.start_soon(_cancel_when_asked, process, reporter, state)
            await _read_events(process, reporter, state)
            with anyio.fail_after(STOP_WAIT + 5):
                await process.wait()
            group.cancel_scope.cancel()
    except anyio.get_cancelled_exc_class():
        # The job's task was cancelled (the server stops): the worker must not outlive it.
        with anyio.CancelScope(shield=True):
            await _stop(process, state)
        raise Cancelled from None
    except BaseException:
        with anyio.CancelScope(shield=True):
            await _stop(process, state)
        raise
    finally:
        with anyio.CancelScope(shield=True), anyio.move_on_after(STOP_WAIT):
            await process.aclose()  # past the wait, aclose kills it
    status = process.returncode
    if status not in (0, 1, 2):  # killed or crashed: its kernel may still run
        _kill_kernel(state["kernel"])
    if reporter.cancelled:
        raise Cancelled
    if status == 0 and state["result"] is not None:
        return checked_result(request, state["result"])
    if state["error"]:
        log.debug("job worker failed: %s", state["stderr"].decode("utf-8", "replace"))
        raise WorkerFailed(state["error"])
    log.warning(
        "job worker ended with status %s: %s",
        status,
        state["stderr"].decode("utf-8", "replace")[-_STDERR_KEPT:],
    )
    raise WorkerFailed(f"the worker process ended unexpectedly (status {status})")


async def _read_events(process: Any, reporter: Reporter, state: dict[str, Any]) -> None:
    """Apply the worker's events until it closes its output.

    The worker runs users' code (their kernel's, nbconvert's templates...), so none of its
    events is trusted: counts are bounded, and a kernel is only ever remembered once it is
    seen to be the worker's own child, leading a process group of its own.
    """
    stream = BufferedByteReceiveStream(process.stdout)
    while True:
        try:
            line = await stream.receive_until(b"\n", _MAX_EVENT)
        except (anyio.EndOfStream, anyio.IncompleteRead):
            return
        try:
            event = orjson.loads(line)
        except orjson.JSONDecodeError:
            continue
        if not isinstance(event, dict):
            continue
        if (total := _count(event.get("total"))) is not None:
            reporter.total = total
            reporter.done = min(reporter.done, total)
        if (done := _count(event.get("done"))) is not None:
            reporter.done = min(done, reporter.total or 0)
        if "kernel" in event and state["kernel"] is None:
            state["kernel"] = _child_group(event["kernel"], process.pid)
        if "result" in event:
            state["result"] = event["result"]
        if "error" in event:
            state["error"] = str(event["error"])[:_STDERR_KEPT]


def _count(value: object) -> int | None:
    """A count a worker reported, if it is one (a plain integer in bounds)."""
    if type(value) is int and 0 <= value <= _MAX_COUNT:
        return value
    return None


def _stat(pid: int) -> tuple[int, int, int] | None:
    """Parent pid, process group and start time (clock ticks) of a process, from
    ``/proc/<pid>/stat``; None when there is no such process."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as file:
            data = file.read()
    except OSError:
        return None
    fields = data[data.rindex(b")") + 2 :].split()  # the name (field 2) may hold anything
    return int(fields[1]), int(fields[2]), int(fields[19])


def _child_group(value: object, worker: int) -> tuple[int, int] | None:
    """The pid (and start time) of the kernel a worker reports, when it is the worker's own
    child and leads its own process group (jupyter_client starts kernels in a session of
    their own); None for anything else, never to be signalled."""
    if type(value) is not int or value <= 1 or value in (os.getpid(), os.getpgrp(), worker):
        log.warning("a job worker reported an invalid kernel pid: %.40r", value)
        return None
    info = _stat(value)
    if info is None or info[0] != worker or info[1] != value:
        log.warning("a job worker reported pid %d, not a kernel of its own", value)
        return None
    return value, info[2]


def checked_result(request: dict[str, Any], result: object) -> dict[str, Any]:
    """The worker's result, kept to the fields its kind has, each of its type."""
    if not isinstance(result, dict):
        raise WorkerFailed("the worker reported a malformed result")
    checked: dict[str, Any] = {"size": _count(result.get("size")) or 0}
    if request["kind"] == "run":
        checked["cells"] = _count(result.get("cells")) or 0
        return checked
    checked["format"] = request["format"]
    if request["store"]:
        name, media_type = result.get("name"), result.get("media_type")
        if not (isinstance(name, str) and _NAME.fullmatch(name)):
            raise WorkerFailed("the worker reported a malformed file name")
        if not (isinstance(media_type, str) and _MEDIA_TYPE.fullmatch(media_type)):
            raise WorkerFailed("the worker reported a malformed media type")
        checked.update(name=name, media_type=media_type)
    else:
        files = result.get("files")
        if not isinstance(files, list):
            files = []
        checked["files"] = [f for f in files[:_MAX_COUNT] if isinstance(f, str)][:1000]
    return checked


async def _drain(process: Any, state: dict[str, Any]) -> None:
    """Keep the end of the worker's standard error, for the log when it dies."""
    async for chunk in process.stderr:
        state["stderr"] = (state["stderr"] + chunk)[-_STDERR_KEPT:]


async def _cancel_when_asked(process: Any, reporter: Reporter, state: dict[str, Any]) -> None:
    """Once the job is cancelled, ask the worker to stop; kill it if it has not soon."""
    await reporter.wait_cancelled()
    await _stop(process, state)


async def _stop(process: Any, state: dict[str, Any]) -> None:
    """Ask a run's worker to stop (a line on its input) and wait :data:`STOP_WAIT` seconds;
    then (at once for an export) kill it and the kernel it reported."""
    if process.returncode is not None:
        return
    if state["graceful"]:
        with contextlib.suppress(Exception):
            await process.stdin.send(b"cancel\n")
        with anyio.move_on_after(STOP_WAIT):
            await process.wait()
            return
        log.warning("a job worker did not stop in %s s; killing it", STOP_WAIT)
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGKILL)
    _kill_kernel(state["kernel"])
    with anyio.move_on_after(5):
        await process.wait()


def _kill_kernel(kernel: tuple[int, int] | None) -> None:
    """Kill the process group of a kernel a worker left behind (its own session), if that
    process still runs (the same start time: its pid was not reused) and leads it."""
    if kernel is None:
        return
    pid, started = kernel
    info = _stat(pid)
    if info is None or info[1] != pid or info[2] != started:
        return
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pid, signal.SIGKILL)
