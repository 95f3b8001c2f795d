"""The program of ``export`` and ``run`` jobs (``python -m junction.plugins.jobs.notebook_worker``).

Each job gets its own process, so a big notebook's memory is given back when it ends and a
cancelled job can always be stopped. The request is the one argument (JSON, see
:mod:`~junction.plugins.jobs.notebooks`); the program answers with JSON events, one per line,
on its standard output, and sends everything else anything prints (nbconvert, nbclient, the
kernel) to standard error:

- ``{"total": n}``: the cells to run (``run``);
- ``{"kernel": pid}``: the kernel's process, once started (``run``);
- ``{"done": n}``: cells run so far (``run``);
- ``{"result": {...}}``: the job's result, last, on success (exit status 0);
- ``{"error": "..."}``: why the job failed, last (exit status 1).

A ``run`` executes the notebook nbclient's way in a fresh kernel of its own. A line on
standard input, or its end (the server went away), cancels it: the kernel is interrupted, shut
down, and the program exits with status 2 without writing anything. The kernel is shut down
whatever happens. Files are written under a temporary name and renamed into place, so a
reader never sees half a file.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import io
import json
import os
import stat
import sys
import traceback
import zipfile
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path, PurePosixPath
from typing import Any

from junction.fdpaths import descriptor_name

__all__ = ["CANCELLED", "FAILED", "main"]

FAILED = 1
"""Exit status of a job that failed (after an ``error`` event)."""

CANCELLED = 2
"""Exit status of a run cancelled through standard input."""

Emit = Callable[[dict[str, Any]], None]


class JobFailed(Exception):
    """The job cannot go on; the message is the job's error."""


def main(argv: list[str]) -> int:
    """Run the request in ``argv[1]``; returns the exit status."""
    events = os.fdopen(os.dup(1), "w", buffering=1, encoding="utf-8")
    os.dup2(2, 1)  # only events go to the server's pipe

    def emit(event: dict[str, Any]) -> None:
        events.write(json.dumps(event) + "\n")

    request: dict[str, Any] = json.loads(argv[1])
    try:
        if request["kind"] == "export":
            emit({"result": export(request)})
            return 0
        return asyncio.run(run(request, emit))
    except JobFailed as exc:
        emit({"error": str(exc)})
        return FAILED
    except Exception as exc:
        traceback.print_exc()  # to standard error: the server's debug log
        emit({"error": f"{type(exc).__name__}: {exc}"})
        return FAILED


def open_folder(request: dict[str, Any]) -> int:
    """The target's folder, open; raises :class:`JobFailed` unless it is still the real
    folder checked when the job was submitted (no link swapped in since: every write goes
    through this descriptor, so none can land anywhere else)."""
    folder = str(Path(request["target"]).parent)
    flags = os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC | os.O_NOFOLLOW
    try:
        fd = os.open(folder, flags)
    except OSError as exc:  # ELOOP, ENOTDIR: a link now
        raise JobFailed(
            f"the destination folder was moved or removed while the job ran: {exc.strerror}"
        ) from None
    if request["store"]:
        return fd  # the server's private directory
    real = descriptor_name(fd) or folder  # unnamed: O_NOFOLLOW guarded the last step alone
    if real != folder:
        os.close(fd)
        raise JobFailed("the destination folder was moved or replaced while the job ran")
    return fd


def write_file(
    folder: int, name: str, partial: str, data: bytes, *, overwrite: bool, mode: int
) -> None:
    """Write ``data`` to ``partial``, then move it to ``name`` in one step, both in the open
    ``folder``.

    Without ``overwrite`` the move fails (:class:`JobFailed`) when ``name`` exists. The
    partial file is removed whatever happens.
    """
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC | os.O_NOFOLLOW
    try:
        fd = os.open(partial, flags, mode, dir_fd=folder)
        with os.fdopen(fd, "wb") as stream:
            stream.write(data)
            stream.flush()
            os.fsync(stream.fileno())
        if overwrite:
            os.replace(partial, name, src_dir_fd=folder, dst_dir_fd=folder)
        else:
            try:  # unlike rename, refuses to replace a file
                os.link(partial, name, src_dir_fd=folder, dst_dir_fd=folder, follow_symlinks=False)
            except FileExistsError:
                raise JobFailed(f"{name} appeared while the job ran") from None
    except OSError as exc:
        raise JobFailed(f"could not write {name}: {exc.strerror or exc}") from None
    finally:
        with contextlib.suppress(OSError):
            os.unlink(partial, dir_fd=folder)


def _exists(folder: int, parts: tuple[str, ...]) -> bool:
    """Whether the relative path ``parts`` names anything (a link included) in ``folder``."""
    try:
        os.stat("/".join(parts), dir_fd=folder, follow_symlinks=False)
    except FileNotFoundError:
        return False
    except OSError:
        return True  # something is in the way: the write would not be a plain new file
    return True


def _subfolder(folder: int, names: tuple[str, ...]) -> int:
    """Open (creating them) the folders ``names`` below ``folder``, never following a link."""
    current = os.dup(folder)
    try:
        for name in names:
            with contextlib.suppress(FileExistsError):
                os.mkdir(name, 0o777, dir_fd=current)
            flags = os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC | os.O_NOFOLLOW
            opened = os.open(name, flags, dir_fd=current)
            os.close(current)
            current = opened
    except OSError as exc:
        os.close(current)
        raise JobFailed(f"could not create the folder {name}: {exc.strerror or exc}") from None
    return current


_REPLACED = "the notebook was moved or replaced while the job waited"


def _read_notebook(source: Path) -> tuple[Any, os.stat_result]:
    """The notebook at ``source`` and its status; raises :class:`JobFailed` unless it is
    still the real file checked when the job was submitted (no link swapped in since)."""
    import nbformat

    flags = os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC | os.O_NOFOLLOW
    try:
        fd = os.open(source, flags)
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            raise JobFailed(_REPLACED) from None
        raise JobFailed(f"{source.name} is not a readable notebook: {exc.strerror}") from None
    with os.fdopen(fd, "rb") as file:
        real = descriptor_name(fd) or str(source)  # unnamed: O_NOFOLLOW guarded the last step
        info = os.fstat(fd)
        if real != str(source) or not stat.S_ISREG(info.st_mode):
            raise JobFailed(_REPLACED)
        try:
            text = file.read().decode("utf-8")
            notebook = nbformat.reads(text, as_version=4)  # type: ignore[no-untyped-call]  # untyped
        except (OSError, ValueError) as exc:
            raise JobFailed(f"{source.name} is not a readable notebook: {exc}") from None
    return notebook, info


# -- export ------------------------------------------------------------------------------------


def export(request: dict[str, Any]) -> dict[str, Any]:
    """Export the notebook with nbconvert; returns the job's result.

    With ``store`` the export goes to the server's jobs directory for download (a zip when
    the exporter makes extra files, as Jupyter does); otherwise to ``target`` under the
    root, with extra files (images of the markdown exporter...) beside it.
    """
    from nbconvert.exporters import get_exporter

    source = Path(request["source"])
    notebook, info = _read_notebook(source)
    format_name = request["format"]
    exporter = get_exporter(format_name)()  # type: ignore[no-untyped-call]  # untyped library
    stem = source.name.rsplit(".", 1)[0]
    modified = datetime.fromtimestamp(info.st_mtime, UTC)
    metadata = {
        "name": stem,
        "path": str(source.parent),
        "modified_date": modified.strftime("%B %d, %Y"),
    }
    try:
        output, resources = exporter.from_notebook_node(notebook, resources={"metadata": metadata})
    except Exception as exc:
        raise JobFailed(
            f"nbconvert could not export the notebook as {format_name}: {exc}"
        ) from None
    body = output.encode("utf-8") if isinstance(output, str) else bytes(output)
    extension = resources.get("output_extension") or ""
    extras: dict[str, bytes] = resources.get("outputs") or {}
    target = Path(request["target"]).name
    partial = Path(request["partial"]).name
    result: dict[str, Any] = {"format": format_name}
    if request["store"]:
        media_type = str(exporter.output_mimetype or "application/octet-stream")
        name = stem + extension
        if extras:
            buffer = io.BytesIO()
            with zipfile.ZipFile(buffer, "w", compression=zipfile.ZIP_DEFLATED) as archive:
                archive.writestr(name, body)
                for filename, data in extras.items():
                    archive.writestr(PurePosixPath(filename).name, data)
            body, media_type, name = buffer.getvalue(), "application/zip", stem + ".zip"
        folder = open_folder(request)
        try:
            write_file(folder, target, partial, body, overwrite=True, mode=0o600)
        finally:
            os.close(folder)
        return {**result, "name": name, "media_type": media_type, "size": len(body)}
    overwrite = bool(request["overwrite"])
    files: dict[tuple[str, ...], bytes] = {}
    for filename, data in extras.items():
        parts = PurePosixPath(filename).parts
        if not parts or filename.startswith("/") or any(p in ("", ".", "..") for p in parts):
            continue  # exporters name extra files plainly; anything else is not written
        if any(part.startswith(".") for part in parts):
            continue
        files[parts] = data
    folder = open_folder(request)
    try:
        if not overwrite:  # checked before anything is written, so nothing is half done
            for parts in files:
                if _exists(folder, parts):
                    raise JobFailed(
                        f"{'/'.join(parts)} already exists (send overwrite: true to replace it)"
                    )
        write_file(folder, target, partial, body, overwrite=overwrite, mode=0o666)
        for parts, data in files.items():
            where = _subfolder(folder, parts[:-1])
            try:
                write_file(where, parts[-1], partial, data, overwrite=overwrite, mode=0o666)
            finally:
                os.close(where)
    finally:
        os.close(folder)
    return {**result, "size": len(body), "files": ["/".join(parts) for parts in files]}


# -- run ---------------------------------------------------------------------------------------


async def run(request: dict[str, Any], emit: Emit) -> int:
    """Execute the notebook in a fresh kernel and write it with its outputs to ``target``.

    A cell that raises (or outlives ``timeout``) fails the job, and the notebook is still
    written, with the outputs of the cells run so far and the error.
    """
    from jupyter_core.utils import ensure_async
    from nbclient import NotebookClient
    from nbclient.exceptions import CellExecutionError, CellTimeoutError, DeadKernelError

    source = Path(request["source"])
    notebook, _ = _read_notebook(source)
    emit({"total": len(notebook.cells)})
    client = NotebookClient(
        notebook,
        timeout=request.get("timeout"),
        kernel_name=request.get("kernel_name") or "",
        allow_errors=False,
        resources={"metadata": {"path": str(source.parent)}},
    )
    main_task = asyncio.current_task()
    assert main_task is not None
    cancelled = asyncio.Event()
    watcher = asyncio.create_task(_wait_cancel(cancelled, main_task))
    client.km = client.create_kernel_manager()
    try:
        try:
            await client.async_start_new_kernel()
        except Exception as exc:
            raise JobFailed(f"the kernel could not start: {_kernel_error(exc)}") from None
        pid = getattr(client.km.provisioner, "pid", None)
        if pid is not None:
            emit({"kernel": pid})
        await client.async_start_new_kernel_client()
        assert client.kc is not None
        reply = await client.async_wait_for_reply(await ensure_async(client.kc.kernel_info()))
        if reply is not None and "language_info" in reply["content"]:
            notebook.metadata["language_info"] = reply["content"]["language_info"]
        failure: str | None = None
        for index, cell in enumerate(notebook.cells):
            try:
                await client.async_execute_cell(
                    cell, index, execution_count=client.code_cells_executed + 1
                )
            except CellTimeoutError:
                failure = f"cell {index + 1} timed out after {request.get('timeout')} s"
            except CellExecutionError as exc:
                failure = f"cell {index + 1} raised {exc.ename}: {exc.evalue}"
            except DeadKernelError:
                # nbclient reports a cancelled wait as a dead kernel
                if cancelled.is_set():
                    return CANCELLED
                failure = f"the kernel died while cell {index + 1} ran"
            if cancelled.is_set():
                return CANCELLED
            if failure is not None:
                break
            emit({"done": index + 1})
        client.set_widgets_metadata()
        import nbformat

        data = nbformat.writes(notebook).encode("utf-8")  # type: ignore[no-untyped-call]  # untyped
        folder = open_folder(request)
        try:
            write_file(
                folder,
                Path(request["target"]).name,
                Path(request["partial"]).name,
                data,
                overwrite=request["overwrite"],
                mode=0o666,
            )
        finally:
            os.close(folder)
        if failure is not None:
            raise JobFailed(failure)
        emit({"result": {"cells": len(notebook.cells), "size": len(data)}})
        return 0
    except asyncio.CancelledError:
        if not cancelled.is_set():
            raise
        return CANCELLED
    finally:
        watcher.cancel()
        await _shutdown(client, interrupt=cancelled.is_set())


def _kernel_error(exc: Exception) -> str:
    from jupyter_client.kernelspec import NoSuchKernel

    if isinstance(exc, NoSuchKernel):
        return f"no kernel named {exc.name!r}"
    return str(exc) or type(exc).__name__


async def _wait_cancel(cancelled: asyncio.Event, task: asyncio.Task[Any]) -> None:
    """Cancel ``task`` at the first line on standard input, or at its end."""
    loop = asyncio.get_running_loop()
    reader = asyncio.StreamReader()
    transport, _ = await loop.connect_read_pipe(
        lambda: asyncio.StreamReaderProtocol(reader), sys.stdin
    )
    try:
        await reader.readline()
    finally:
        transport.close()
    cancelled.set()
    task.cancel()


async def _shutdown(client: Any, *, interrupt: bool) -> None:
    """Stop the client's channels and its kernel: asked to shut down, killed if it lingers."""
    if client.kc is not None:
        client.kc.stop_channels()
        client.kc = None
    manager = client.km
    if manager is None or not manager.has_kernel:
        return
    if interrupt:
        with contextlib.suppress(Exception):
            await manager.interrupt_kernel()
        manager.shutdown_wait_time = 2.0
    try:
        await manager.shutdown_kernel(now=False)
    except Exception:
        await manager.shutdown_kernel(now=True)


if __name__ == "__main__":
    sys.exit(main(sys.argv))
