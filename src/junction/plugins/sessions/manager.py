"""Sessions kept in a :class:`SessionStore`, with kernels from the kernels service.

Records hold only a kernel id; every answer reads the kernel's model from the kernels service,
so a session never shows a stale kernel. A record whose kernel has gone is dropped the first
time it is read (see :class:`~junction.plugins.sessions.service.SessionService`).

Concurrency: creating sessions is serialised per path (two clients opening one notebook at
once get one session and one kernel), changes and deletion per session. Kernel starts for
different documents still run side by side.
"""

from __future__ import annotations

import logging
import posixpath
import uuid
from collections.abc import AsyncIterator, Hashable
from contextlib import asynccontextmanager, suppress
from dataclasses import replace
from pathlib import Path

import anyio

from junction.errors import BadRequest
from junction.plugins.kernels.models import Kernel
from junction.plugins.kernels.service import (
    KernelNotFound,
    KernelService,
    KernelSpecNotFound,
    KernelStartFailed,
)
from junction.plugins.sessions.models import NotebookRef, Session
from junction.plugins.sessions.service import (
    KernelGone,
    KernelUnavailable,
    SessionNotFound,
    SessionRecord,
    SessionStore,
)

__all__ = ["StoredSessions", "UnknownKernelSpec"]

log = logging.getLogger("junction.sessions")


class UnknownKernelSpec(KernelUnavailable, BadRequest):
    """A session named a kernel spec that is not installed (400).

    jupyter_server answers 501 here, but nothing on the server failed: the request named
    something that does not exist. No client depends on the 501: ``@jupyterlab/services``
    treats every status but 201 (200 for PATCH) alike and shows ``message``, and
    jupyter_server's ``GatewayClient`` never sends sessions to a gateway. The body keeps
    Jupyter's ``short_message``.
    """

    status_code = 400
    default_reason = "Bad Request"


class _KeyedLocks:
    """One :class:`anyio.Lock` per key, forgotten when nobody holds or waits for it."""

    def __init__(self) -> None:
        self._locks: dict[Hashable, anyio.Lock] = {}

    @asynccontextmanager
    async def hold(self, key: Hashable) -> AsyncIterator[None]:
        lock = self._locks.setdefault(key, anyio.Lock())
        try:
            async with lock:
                yield
        finally:
            if not lock.locked() and lock.statistics().tasks_waiting == 0:
                self._locks.pop(key, None)


class StoredSessions:
    """The :class:`~junction.plugins.sessions.service.SessionService` of the sessions plugin.

    ``root_dir`` is the server's root; it only serves to tell a kernel which file it runs for
    (``JPY_SESSION_NAME``, which ipykernel exposes as ``__session__``). ``listing``: whether
    ``GET /api/sessions`` answers (``sessions.list_sessions``); :meth:`list` itself always does.
    """

    def __init__(
        self, store: SessionStore, kernels: KernelService, root_dir: Path, *, listing: bool = True
    ) -> None:
        self.listing = listing
        self._store = store
        self._kernels = kernels
        self._root_dir = root_dir
        self._locks = _KeyedLocks()

    # -- reading -------------------------------------------------------------------------

    async def get(self, session_id: str) -> Session:
        """Return a session with its live kernel model; raises :class:`SessionNotFound`."""
        record = await self._store.get(session_id)
        if record is None:
            raise SessionNotFound(session_id)
        kernel = await self._live_kernel(record)
        if kernel is None:
            raise SessionNotFound(session_id)
        return _model(record, kernel)

    async def list(self) -> list[Session]:
        """Return every session whose kernel still runs, oldest first."""
        running = {kernel.id: kernel for kernel in await self._kernels.list()}
        sessions = []
        for record in await self._store.list():
            kernel = running.get(record.kernel_id)
            if kernel is None:
                # Not listed: maybe gone, maybe started after the listing. Ask once more.
                kernel = await self._live_kernel(record)
            if kernel is not None:
                sessions.append(_model(record, kernel))
        return sessions

    # -- changing ------------------------------------------------------------------------

    async def create(
        self,
        *,
        path: str,
        type: str,
        name: str | None = None,
        kernel_name: str | None = None,
        kernel_id: str | None = None,
    ) -> tuple[Session, bool]:
        """Return the session for ``path``, creating it (and maybe a kernel) when there is none."""
        async with self._locks.hold(("path", path)):
            existing = await self._store.find(path=path)
            if existing is not None:
                kernel = await self._live_kernel(existing)
                if kernel is not None:
                    return _model(existing, kernel), False
            started = False
            if kernel_id is not None and self._kernels.exists(kernel_id):
                kernel = await self._kernels.get(kernel_id)
            else:
                kernel = await self._start_kernel(
                    path=path, name=name, kernel_name=kernel_name, kernel_id=kernel_id
                )
                started = True
            record = SessionRecord(
                id=str(uuid.uuid4()), path=path, name=name, type=type, kernel_id=kernel.id
            )
            try:
                await self._store.add(record)
            except BaseException:
                if started:
                    with anyio.CancelScope(shield=True):
                        await self._shutdown_quietly(kernel.id)
                raise
            log.info("session %s for %s uses kernel %s", record.id, path, kernel.id)
            return _model(record, kernel), True

    async def update(
        self,
        session_id: str,
        *,
        path: str | None = None,
        name: str | None = None,
        type: str | None = None,
        kernel_id: str | None = None,
        kernel_name: str | None = None,
    ) -> Session:
        """Change a session; see :meth:`SessionService.update`."""
        async with self._locks.hold(("session", session_id)):
            record = await self._store.get(session_id)
            if record is None or await self._live_kernel(record) is None:
                raise SessionNotFound(session_id)
            updated = replace(
                record,
                path=record.path if path is None else path,
                name=record.name if name is None else name,
                type=record.type if type is None else type,
            )
            if kernel_id is not None:
                if not self._kernels.exists(kernel_id):
                    raise BadRequest(f"No such kernel: {kernel_id}")
                updated = replace(updated, kernel_id=kernel_id)
            elif kernel_name is not None:
                kernel = await self._start_kernel(
                    path=updated.path, name=updated.name, kernel_name=kernel_name, patching=True
                )
                updated = replace(updated, kernel_id=kernel.id)
            await self._store.replace(updated)
            if updated.kernel_id != record.kernel_id:
                log.info(
                    "session %s moved from kernel %s to %s",
                    session_id,
                    record.kernel_id,
                    updated.kernel_id,
                )
                await self._release(record.kernel_id)
        return await self.get(session_id)

    async def delete(self, session_id: str) -> None:
        """Forget a session, shutting its kernel down unless another session uses it."""
        async with self._locks.hold(("session", session_id)):
            record = await self._store.get(session_id)
            if record is None:
                raise SessionNotFound(session_id)
            users = await self._store.with_kernel(record.kernel_id)
            shared = [other for other in users if other.id != record.id]
            gone = False
            if shared:
                gone = not self._kernels.exists(record.kernel_id)
            else:
                try:
                    await self._kernels.shutdown(record.kernel_id)
                except KernelNotFound:
                    gone = True
            await self._store.remove(session_id)
            if gone:
                raise KernelGone(session_id, record.kernel_id)
            log.info("session %s deleted", session_id)

    # -- helpers -------------------------------------------------------------------------

    async def _live_kernel(self, record: SessionRecord) -> Kernel | None:
        """The kernel of a record, or None after dropping a record whose kernel is gone."""
        try:
            return await self._kernels.get(record.kernel_id)
        except KernelNotFound:
            log.warning(
                "kernel %s of session %s (%s) is gone; the session is dropped",
                record.kernel_id,
                record.id,
                record.path,
            )
            await self._store.remove(record.id)
            return None

    async def _start_kernel(
        self,
        *,
        path: str,
        name: str | None,
        kernel_name: str | None,
        kernel_id: str | None = None,
        patching: bool = False,
    ) -> Kernel:
        """Start a kernel for a document; map "no such spec" to :class:`UnknownKernelSpec`
        (400) and, when patching, any start failure to :class:`KernelUnavailable` (501)."""
        env = {"JPY_SESSION_NAME": self._session_name(path, name)}
        try:
            return await self._kernels.start(
                name=kernel_name, path=path, env=env, kernel_id=kernel_id
            )
        except KernelSpecNotFound as exc:
            raise UnknownKernelSpec(
                f"Kernel {exc.spec_name!r} is not installed; pick another kernel or install it.",
                f"{exc.spec_name} not found",
            ) from exc
        except KernelStartFailed as exc:
            if not patching:
                raise
            raise KernelUnavailable(
                f"Kernel {kernel_name!r} could not be started: {exc.message}",
                f"Error starting kernel {kernel_name}",
            ) from exc

    def _session_name(self, path: str, name: str | None) -> str:
        """The file a kernel runs for: the document's absolute path when ``name`` is its file
        name, else the session path as the client gave it (consoles use made-up keys)."""
        if name is None:
            return path
        directory = posixpath.dirname(path.strip("/"))
        return str(self._root_dir.joinpath(*directory.split("/"), name))

    async def _release(self, kernel_id: str) -> None:
        """Shut a kernel down that a session stopped using, unless another session uses it."""
        if await self._store.with_kernel(kernel_id):
            return
        await self._shutdown_quietly(kernel_id)

    async def _shutdown_quietly(self, kernel_id: str) -> None:
        with suppress(KernelNotFound):
            await self._kernels.shutdown(kernel_id)


def _model(record: SessionRecord, kernel: Kernel) -> Session:
    notebook = None
    if record.type == "notebook":
        notebook = NotebookRef(path=record.path, name=record.name)
    return Session(
        id=record.id,
        path=record.path,
        name=record.name,
        type=record.type,
        kernel=kernel,
        notebook=notebook,
    )
