"""``ServerExecutor``: runs a cell of a shared notebook and writes its outputs itself.

For ``POST /api/kernels/{kernel_id}/execute`` (page config ``serverSideExecution``): the
server reads the cell's source from the room, clears its outputs, marks it ``busy``, runs
the code on the kernel as its own client, and writes every output into the document as it
comes. Outputs are therefore kept, stored and saved when every browser tab is closed
mid-run, and whoever opens the notebook later sees them.

Messages map to the document as JupyterLab's output area does: ``stream`` text is appended
to the last output when it is a stream of the same name (else a new stream output);
``display_data``, ``execute_result`` and ``error`` are appended; ``clear_output`` clears at
once, or with ``wait`` just before the next output; ``update_display_data`` replaces the
data of the outputs shown with the same ``display_id`` by this run. The reply sets
``execution_count``; the end sets ``execution_state`` back to ``idle``.

Timings: as JupyterLab's cell executor, a run first drops the cell's
``metadata.execution``; when the notebook setting ``recordTiming`` is on, it then writes
``iopub.status.busy``, ``iopub.execute_input`` and ``shell.execute_reply.started`` when the
kernel starts the cell (its ``execute_input`` arrives), and ``shell.execute_reply`` and
``iopub.status.idle`` when it is done (``execution_failed`` when the run broke off). The
times are the server's (UTC, ISO 8601), taken as the messages arrive: the kernel's own
header dates do not reach this module. Whether ``recordTiming`` is on is asked per run
(``record_timing``), so the user's setting applies from the next cell on.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import anyio
import anyio.abc

from junction.errors import NotFound
from junction.plugins.collaboration.document import DocumentRoom
from junction.plugins.collaboration.rooms import Rooms
from junction.plugins.kernels.service import ServerSideExecution

if TYPE_CHECKING:
    from pycrdt import Array, Map, Text

__all__ = ["NOTEBOOK_TRACKER", "CellNotFound", "ServerExecutor", "now_iso", "records_timing"]

log = logging.getLogger("junction.collaboration")

_CATCH_UP_TIMEOUT = 5.0
_OUTPUT_TYPES = frozenset({"stream", "display_data", "execute_result", "error"})

NOTEBOOK_TRACKER = "@jupyterlab/notebook-extension:tracker"
"""The JupyterLab settings plugin holding the notebook's ``recordTiming``."""

RecordTiming = Callable[[], Awaitable[bool]]


def now_iso() -> str:
    """The time now as Jupyter message headers give it (UTC, ISO 8601, ``Z``)."""
    return datetime.now(UTC).isoformat().replace("+00:00", "Z")


def records_timing(entry_settings: dict[str, Any], schema: dict[str, Any]) -> bool:
    """Whether ``recordTiming`` is on: the user's value, else the schema's default (the
    admin's override applied)."""
    default = (schema.get("properties") or {}).get("recordTiming", {}).get("default", False)
    return entry_settings.get("recordTiming", default) is True


class CellNotFound(NotFound):
    """The notebook's room has no cell with this id (or it is no code cell)."""


def _output_map(msg_type: str, content: dict[str, Any]) -> Map[Any]:
    # pycrdt loads with the first room, not at startup (so in each function that needs it).
    from pycrdt import Map, Text

    if msg_type == "stream":
        return Map(
            {
                "output_type": "stream",
                "name": content.get("name", "stdout"),
                "text": Text(str(content.get("text", ""))),
            }
        )
    output: dict[str, Any] = {"output_type": msg_type}
    if msg_type == "error":
        output.update(
            ename=content.get("ename", ""),
            evalue=content.get("evalue", ""),
            traceback=list(content.get("traceback", [])),
        )
    else:
        output["data"] = content.get("data", {})
        output["metadata"] = content.get("metadata", {})
        if msg_type == "execute_result":
            output["execution_count"] = content.get("execution_count")
    return Map(output)


class _CellRun:
    """One execution's writer into one cell."""

    def __init__(self, room: DocumentRoom, cell: Map[Any], *, record_timing: bool) -> None:
        self.room = room
        self.cell = cell
        self.outputs: Array[Any] = cell["outputs"]
        self.clear_pending = False
        self.displays: dict[str, list[int]] = {}
        self.wake = anyio.Event()
        self.record_timing = record_timing

    def add_timing(self, *keys: str) -> None:
        """Set ``keys`` of the cell's ``metadata.execution`` to now (with ``recordTiming``).

        Called inside a transaction. The value is replaced whole, as JupyterLab does.
        """
        from pycrdt import Map

        if not self.record_timing:
            return
        metadata = self.cell.get("metadata")
        if not isinstance(metadata, Map):
            return
        timing = dict(metadata.get("execution") or {})
        moment = now_iso()
        timing.update(dict.fromkeys(keys, moment))
        metadata["execution"] = timing

    def on_output(self, msg_type: str, content: dict[str, Any]) -> None:
        """Write one iopub message into the cell (called from the kernel's reader)."""
        doc = self.room.doc
        with doc.transaction():
            if msg_type == "execute_input":
                self.add_timing(
                    "iopub.status.busy", "iopub.execute_input", "shell.execute_reply.started"
                )
            elif msg_type == "clear_output":
                if content.get("wait"):
                    self.clear_pending = True
                else:
                    self._clear()
            elif msg_type == "update_display_data":
                display_id = (content.get("transient") or {}).get("display_id")
                for index in self.displays.get(str(display_id), []):
                    if index < len(self.outputs):
                        output = self.outputs[index]
                        output["data"] = content.get("data", {})
                        output["metadata"] = content.get("metadata", {})
            elif msg_type in _OUTPUT_TYPES:
                if self.clear_pending:
                    self._clear()
                self._append(msg_type, content)
            else:
                return
        self.room.changed(by_client=False)
        self.wake.set()

    def _clear(self) -> None:
        self.clear_pending = False
        self.displays.clear()
        self.outputs.clear()

    def _append(self, msg_type: str, content: dict[str, Any]) -> None:
        from pycrdt import Map, Text

        if msg_type == "stream" and len(self.outputs):
            last = self.outputs[len(self.outputs) - 1]
            if (
                isinstance(last, Map)
                and last.get("output_type") == "stream"
                and last.get("name") == content.get("name")
                and isinstance(last.get("text"), Text)
            ):
                text: Text = last["text"]
                text += str(content.get("text", ""))
                return
        display_id = (content.get("transient") or {}).get("display_id")
        if display_id is not None:
            self.displays.setdefault(str(display_id), []).append(len(self.outputs))
        self.outputs.append(_output_map(msg_type, content))


class ServerExecutor:
    """Runs cells of shared notebooks on kernels (see the module docstring)."""

    def __init__(
        self,
        rooms: Rooms,
        kernels: ServerSideExecution,
        task_group: anyio.abc.TaskGroup,
        record_timing: RecordTiming | None = None,
    ) -> None:
        self.rooms = rooms
        self.kernels = kernels
        self._group = task_group
        self._record_timing = record_timing

    async def execute(self, kernel_id: str, document_id: str, cell_id: str) -> None:
        """Start running the cell; returns once it is marked busy (the run goes on)."""
        from pycrdt import Map

        room = await self.rooms.get(document_id)
        if not isinstance(room, DocumentRoom) or room.type != "notebook":
            raise CellNotFound(f"{document_id!r} is not a notebook's room")
        # The front end sends only the cell's id: its last keystrokes travel on the room's
        # WebSocket, another connection than this request. Fetch them first.
        await room.catch_up(_CATCH_UP_TIMEOUT)
        record = await self._record_timing() if self._record_timing is not None else False
        cell = self._find(room, cell_id)
        source = str(cell["source"])
        with room.doc.transaction():
            cell["outputs"].clear()
            cell["execution_count"] = None
            cell["execution_state"] = "busy"
            metadata = cell.get("metadata")
            if isinstance(metadata, Map) and "execution" in metadata:
                del metadata["execution"]
        await room.flush()
        run = _CellRun(room, cell, record_timing=record)
        room.hold()
        self._group.start_soon(self._run, kernel_id, source, run)

    @staticmethod
    def _find(room: DocumentRoom, cell_id: str) -> Map[Any]:
        from pycrdt import Array, Map

        cells: Array[Any] = room.doc.get("cells", type=Array)
        for cell in cells:
            if isinstance(cell, Map) and cell.get("id") == cell_id:
                if cell.get("cell_type") != "code" or not isinstance(cell.get("outputs"), Array):
                    raise CellNotFound(f"cell {cell_id!r} is not a code cell")
                return cell
        raise CellNotFound(f"no cell {cell_id!r} in {room.id!r}")

    async def _run(self, kernel_id: str, source: str, run: _CellRun) -> None:
        room = run.room
        reply: dict[str, Any] = {}
        failed = True
        try:
            async with anyio.create_task_group() as group:
                group.start_soon(self._flusher, run)
                try:
                    reply = await self.kernels.execute(kernel_id, source, run.on_output)
                    failed = False
                finally:
                    group.cancel_scope.cancel()
        except Exception:
            log.exception("room %s: running a cell on kernel %s failed", room.id, kernel_id)
        finally:
            with anyio.CancelScope(shield=True):
                with room.doc.transaction():
                    count = reply.get("execution_count")
                    if isinstance(count, int):
                        run.cell["execution_count"] = count
                    run.cell["execution_state"] = "idle"
                    if failed:
                        run.add_timing("execution_failed")
                    else:
                        run.add_timing("shell.execute_reply", "iopub.status.idle")
                room.changed(by_client=False)
                await room.flush()
                room.release()

    @staticmethod
    async def _flusher(run: _CellRun) -> None:
        while True:
            await run.wake.wait()
            run.wake = anyio.Event()
            await run.room.flush()
