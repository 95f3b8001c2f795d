"""Collaboration on real servers: uvicorn on loopback, a Python Yjs client over ``websockets``.

The client speaks the room protocol the way JupyterLab's provider does (SyncStep1 on open,
answers to the server's SyncStep1, updates, awareness, RAW save) with pycrdt documents.
"""

from __future__ import annotations

import json
import signal
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import quote

import anyio
import httpx
import pytest
import websockets
from jupyter_ydoc import YNotebook
from pycrdt import Doc, Encoder, write_var_uint
from websockets.asyncio.client import ClientConnection

from junction.plugins.collaboration.protocol import (
    AWARENESS,
    RAW,
    SYNC,
    SYNC_STEP1,
    SYNC_STEP2,
    SYNC_UPDATE,
    AwarenessEntry,
    Reader,
    awareness_message,
    parse_awareness,
    sync_message,
)
from junction.testing import TEST_TOKEN, ServerProcess

pytestmark = [pytest.mark.e2e, pytest.mark.anyio]

AUTH = {"Authorization": f"token {TEST_TOKEN}"}
WAIT = 20.0


def notebook(*sources: str) -> dict[str, Any]:
    """A notebook with one code cell per source, cell ids c0, c1, ..."""
    cells: list[dict[str, Any]] = [
        {
            "cell_type": "code",
            "id": f"c{index}",
            "source": source,
            "metadata": {},
            "outputs": [],
            "execution_count": None,
        }
        for index, source in enumerate(sources)
    ]
    return {"cells": cells, "metadata": {}, "nbformat": 4, "nbformat_minor": 5}


def code_cell(source: str, cell_id: str) -> dict[str, Any]:
    """A code cell as JupyterLab inserts it."""
    cell = {"cell_type": "code", "source": source, "id": cell_id, "metadata": {}}
    return {**cell, "outputs": [], "execution_count": None}


def write_notebook(path: Path, *sources: str) -> None:
    """Write a notebook file as an editor outside Junction would."""
    path.write_text(json.dumps(notebook(*sources)))


def sources_on_disk(path: Path) -> list[str]:
    """The cells' sources of the notebook file."""
    data = json.loads(path.read_text())
    return ["".join(cell["source"]) for cell in data["cells"]]


class YClient:
    """A room client: a pycrdt document kept in sync with the server's."""

    def __init__(self, connection: ClientConnection) -> None:
        self.connection = connection
        self.doc: Doc[Any] = Doc()
        self.notebook = YNotebook(self.doc)
        self.synced = anyio.Event()
        self.changed = anyio.Event()
        self.awareness: dict[int, str] = {}
        self.raw: list[dict[str, Any]] = []
        self.close_code: int | None = None
        self._outgoing: list[bytes] = []
        self.doc.observe(lambda event: self._outgoing.append(event.update))

    async def start(self) -> None:
        """Send SyncStep1, as the provider does on open."""
        await self.connection.send(sync_message(SYNC_STEP1, self.doc.get_state()))

    async def run(self) -> None:
        """Read frames until the socket closes."""
        try:
            async for frame in self.connection:
                assert isinstance(frame, bytes)
                await self._handle(frame)
        except websockets.ConnectionClosed:
            pass
        finally:
            self.close_code = self.connection.close_code
            self.changed.set()

    async def _handle(self, frame: bytes) -> None:
        reader = Reader(frame)
        kind = reader.uint()
        if kind == SYNC:
            sub, payload = reader.uint(), reader.bytes()
            if sub == SYNC_STEP1:
                await self.connection.send(sync_message(SYNC_STEP2, self.doc.get_update(payload)))
            else:
                self.doc.apply_update(payload)
                self._outgoing.clear()  # what the server sent is not ours to send back
                if sub == SYNC_STEP2:
                    self.synced.set()
        elif kind == AWARENESS:
            for entry in parse_awareness(reader.bytes()):
                self.awareness[entry.client_id] = entry.state
        elif kind == RAW:
            self.raw.append(json.loads(reader.string()))
        self.changed.set()
        self.changed = anyio.Event()

    async def push(self) -> None:
        """Send the local edits made since the last push."""
        updates, self._outgoing = self._outgoing, []
        for update in updates:
            await self.connection.send(sync_message(SYNC_UPDATE, update))

    async def save(self, request_id: int = 1) -> dict[str, Any]:
        """Send RAW ``save`` and wait for the answer."""
        encoder = Encoder()
        encoder.write_var_string("save")
        encoder.write_var_uint(request_id)
        await self.connection.send(write_var_uint(RAW) + encoder.to_bytes())
        answer: dict[str, Any] = await self.wait_for(
            lambda: next((r for r in self.raw if r.get("responseTo") == request_id), None)
        )
        return answer

    async def wait_for(self, condition: Any, timeout: float = WAIT) -> Any:
        """Wait until ``condition()`` is truthy; returns its value."""
        with anyio.fail_after(timeout):
            while not (value := condition()):
                await self.changed.wait()
            return value

    def type(self, index: int, text: str) -> None:
        """Append ``text`` to cell ``index``'s source, as typing does (a Y.Text insert)."""
        source = self.notebook.ycells[index]["source"]
        source.insert(len(source), text)

    def sources(self) -> list[str]:
        """The cells' sources as this client sees them."""
        return [str(cell["source"]) for cell in self.notebook.get()["cells"]]


async def session(base: str, path: str) -> tuple[int, dict[str, Any]]:
    """PUT /api/collaboration/session/{path} for a notebook."""
    async with httpx.AsyncClient(headers=AUTH) as http:
        response = await http.put(
            f"{base}api/collaboration/session/{quote(path, safe='')}",
            json={"format": "json", "type": "notebook"},
        )
    body = response.json()
    return response.status_code, body


@asynccontextmanager
async def connect(base: str, path: str) -> AsyncIterator[YClient]:
    """A synced client of the notebook at ``path``."""
    _, body = await session(base, path)
    room = f"json:notebook:{body['fileId']}"
    url = base.replace("http", "ws", 1) + f"api/collaboration/room/{room}"
    url += f"?sessionId={body['sessionId']}"
    async with websockets.connect(url, additional_headers=AUTH, max_size=None) as connection:
        client = YClient(connection)
        async with anyio.create_task_group() as group:
            group.start_soon(client.run)
            await client.start()
            with anyio.fail_after(WAIT):
                await client.synced.wait()
            yield client
            group.cancel_scope.cancel()


def server_args(tmp_path: Path, root: Path, **settings: Any) -> list[str]:
    """Command-line arguments of a server running contents + collaboration on ``root``."""
    args = ["--ip", "127.0.0.1", "--port", "0", "--root-dir", str(root)]
    args += ["--profile", "contents", "--enable", "collaboration"]
    args += ["--set", f"database_url=sqlite+aiosqlite:///{tmp_path / 'junction.db'}"]
    for key, value in settings.items():
        args += ["--set", f"collaboration.{key}={value}"]
    return args


@pytest.fixture
def server(tmp_path: Path) -> Iterator[tuple[str, Path]]:
    """A server running contents + collaboration on a fresh root and database."""
    root = tmp_path / "root"
    root.mkdir()
    args = server_args(
        tmp_path,
        root,
        document_save_delay=0.2,
        file_poll_interval=0.2,
        max_update_size=1 << 20,
    )
    with ServerProcess(args, log_path=tmp_path / "server.log") as process:
        yield process.url, root


async def test_session_ids_are_stable_and_missing_files_404(server: tuple[str, Path]) -> None:
    base, root = server
    write_notebook(root / "a b.ipynb", "1")
    status, first = await session(base, "a b.ipynb")
    assert status == 201
    assert set(first) == {"format", "type", "fileId", "sessionId"}
    status, again = await session(base, "a b.ipynb")
    assert status == 200
    assert again["fileId"] == first["fileId"]
    assert again["sessionId"] == first["sessionId"]
    status, missing = await session(base, "nope.ipynb")
    assert status == 404
    assert missing["message"]


async def test_awareness_goes_to_everyone_including_the_sender(server: tuple[str, Path]) -> None:
    base, root = server
    write_notebook(root / "nb.ipynb", "")
    async with connect(base, "nb.ipynb") as alice, connect(base, "nb.ipynb") as bob:
        state = json.dumps({"user": {"name": "alice"}})
        await alice.connection.send(awareness_message([AwarenessEntry(4242, 1, state)]))
        await alice.wait_for(lambda: alice.awareness.get(4242) == state)
        await bob.wait_for(lambda: bob.awareness.get(4242) == state)
    async with connect(base, "nb.ipynb") as carol:
        # alice left: her state was withdrawn for everyone
        assert carol.awareness.get(4242) in (None, "null")


async def test_a_huge_message_is_refused_with_1009(server: tuple[str, Path]) -> None:
    base, root = server
    write_notebook(root / "nb.ipynb", "a")
    async with connect(base, "nb.ipynb") as client:
        client.type(0, "x" * (2 << 20))
        await client.push()
        await client.wait_for(lambda: client.close_code is not None)
        assert client.close_code == 1009
    async with connect(base, "nb.ipynb") as other:
        assert other.sources() == ["a"]


async def test_unknown_session_and_room(server: tuple[str, Path]) -> None:
    base, root = server
    write_notebook(root / "nb.ipynb", "a")
    _, body = await session(base, "nb.ipynb")
    ws = base.replace("http", "ws", 1)
    room = f"{ws}api/collaboration/room/json:notebook:{body['fileId']}?sessionId=stale"
    async with websockets.connect(room, additional_headers=AUTH) as connection:
        with pytest.raises(websockets.ConnectionClosed) as closed:
            await connection.recv()
    assert closed.value.rcvd is not None
    assert closed.value.rcvd.code == 1003
    assert json.loads(closed.value.rcvd.reason)["reason"] == "unknown_session"
    async with websockets.connect(
        f"{ws}api/collaboration/room/json:notebook:no-such-id", additional_headers=AUTH
    ) as connection:
        with pytest.raises(websockets.ConnectionClosed) as closed:
            await connection.recv()
    assert closed.value.rcvd is not None
    assert closed.value.rcvd.code == 4404


async def test_room_needs_auth_and_same_origin(server: tuple[str, Path]) -> None:
    base, root = server
    write_notebook(root / "nb.ipynb", "a")
    ws = base.replace("http", "ws", 1) + "api/collaboration/room/JupyterLab:globalAwareness"
    with pytest.raises(websockets.InvalidStatus) as refused:
        async with websockets.connect(ws):
            pass
    assert refused.value.response.status_code in (401, 403)
    with pytest.raises(websockets.InvalidStatus) as refused:
        async with websockets.connect(
            ws, additional_headers={**AUTH, "Origin": "http://evil.example"}
        ):
            pass
    assert refused.value.response.status_code == 403


async def test_outside_change_is_merged_when_the_room_is_clean(server: tuple[str, Path]) -> None:
    base, root = server
    write_notebook(root / "nb.ipynb", "a")
    async with connect(base, "nb.ipynb") as client:
        write_notebook(root / "nb.ipynb", "from disk")
        await client.wait_for(lambda: client.sources() == ["from disk"])
    assert not list(root.glob("*conflict*"))


async def test_two_clients_edit_and_the_file_is_saved(server: tuple[str, Path]) -> None:
    base, root = server
    write_notebook(root / "nb.ipynb", "x = 1")
    async with connect(base, "nb.ipynb") as alice, connect(base, "nb.ipynb") as bob:
        assert alice.sources() == bob.sources() == ["x = 1"]
        alice.type(0, "\nprint(x)")
        await alice.push()
        await bob.wait_for(lambda: bob.sources() == ["x = 1\nprint(x)"])
        bob.notebook.append_cell(code_cell("y = 2", "c9"))
        await bob.push()
        await alice.wait_for(lambda: alice.sources() == ["x = 1\nprint(x)", "y = 2"])
        answer = await alice.save(7)
        assert answer["status"] in ("success", "skipped")
        with anyio.fail_after(WAIT):
            while sources_on_disk(root / "nb.ipynb") != ["x = 1\nprint(x)", "y = 2"]:
                await anyio.sleep(0.05)
    async with connect(base, "nb.ipynb") as carol:  # the room still holds one copy of each
        assert carol.sources() == ["x = 1\nprint(x)", "y = 2"]


async def test_malformed_messages_disconnect_only_their_sender(server: tuple[str, Path]) -> None:
    base, root = server
    write_notebook(root / "nb.ipynb", "a")
    async with connect(base, "nb.ipynb") as good:
        truncated = b"\x00\x02\x05\x01\x02"
        not_an_update = b"\x00\x02\x0a" + b"\xff" * 10
        bad_awareness = b"\x01\xff"
        for bad in (truncated, not_an_update, bad_awareness):
            async with connect(base, "nb.ipynb") as evil:
                await evil.connection.send(bad)
                await evil.wait_for(lambda evil=evil: evil.close_code is not None)
                assert evil.close_code == 1002
        good.type(0, "b")
        await good.push()
        async with connect(base, "nb.ipynb") as late:
            await late.wait_for(lambda: late.sources() == ["ab"])
        assert good.close_code is None


async def test_outside_change_with_unsaved_edits_keeps_a_conflict_copy(tmp_path: Path) -> None:
    root = tmp_path / "root"
    root.mkdir()
    write_notebook(root / "nb.ipynb", "a")
    args = server_args(tmp_path, root, document_save_delay=30, file_poll_interval=0.2)
    with ServerProcess(args, log_path=tmp_path / "server.log") as process:
        async with connect(process.url, "nb.ipynb") as client:
            client.type(0, " room edit")
            await client.push()
            await client.wait_for(lambda: client.sources() == ["a room edit"])
            write_notebook(root / "nb.ipynb", "disk edit")
            with anyio.fail_after(WAIT):
                while not list(root.glob("nb (conflict *).ipynb")):
                    await anyio.sleep(0.05)
            (copy,) = root.glob("nb (conflict *).ipynb")
            assert sources_on_disk(copy) == ["disk edit"]
            assert client.sources() == ["a room edit"]
            with anyio.fail_after(WAIT):
                while sources_on_disk(root / "nb.ipynb") != ["a room edit"]:
                    await anyio.sleep(0.05)


async def test_rename_keeps_the_id_and_delete_closes_the_room(server: tuple[str, Path]) -> None:
    base, root = server
    write_notebook(root / "nb.ipynb", "a")
    _, before = await session(base, "nb.ipynb")
    async with connect(base, "nb.ipynb") as client:
        async with httpx.AsyncClient(headers=AUTH) as http:
            response = await http.patch(f"{base}api/contents/nb.ipynb", json={"path": "m.ipynb"})
            assert response.status_code == 200
        status, after = await session(base, "m.ipynb")
        assert status == 200
        assert after["fileId"] == before["fileId"]
        client.type(0, "b")
        await client.push()
        await client.save(3)
        with anyio.fail_after(WAIT):
            while sources_on_disk(root / "m.ipynb") != ["ab"]:
                await anyio.sleep(0.05)
        assert not (root / "nb.ipynb").exists()
        async with httpx.AsyncClient(headers=AUTH) as http:
            response = await http.delete(f"{base}api/contents/m.ipynb")
            assert response.status_code == 204
        await client.wait_for(lambda: client.close_code is not None)
        assert client.close_code == 4404
    assert not (root / "m.ipynb").exists()


async def test_sigkill_with_unsaved_edits_loses_nothing(tmp_path: Path) -> None:
    root = tmp_path / "root"
    root.mkdir()
    write_notebook(root / "nb.ipynb", "start")
    args = server_args(tmp_path, root, document_save_delay=600)
    first = ServerProcess(args, log_path=tmp_path / "first.log").start()
    try:
        async with connect(first.url, "nb.ipynb") as client:
            client.type(0, " and more")
            client.notebook.append_cell(code_cell("new", "n1"))
            await client.push()
            async with connect(first.url, "nb.ipynb") as witness:  # the server has them
                await witness.wait_for(lambda: witness.sources() == ["start and more", "new"])
            first.stop(signal.SIGKILL)
    finally:
        first.stop(signal.SIGKILL)
    assert sources_on_disk(root / "nb.ipynb") == ["start"]
    with ServerProcess(args, log_path=tmp_path / "second.log") as second:
        async with connect(second.url, "nb.ipynb") as client:
            assert client.sources() == ["start and more", "new"]
            await client.save(1)
            with anyio.fail_after(WAIT):
                while sources_on_disk(root / "nb.ipynb") != ["start and more", "new"]:
                    await anyio.sleep(0.05)


@pytest.fixture
def kernel_server(tmp_path: Path) -> Iterator[tuple[str, Path]]:
    """A server with kernels too, so cells run on the server."""
    root = tmp_path / "root"
    root.mkdir()
    args = server_args(tmp_path, root, document_save_delay=0.2, file_poll_interval=0.2)
    args += ["--enable", "kernelspecs", "--enable", "kernels"]
    with ServerProcess(args, log_path=tmp_path / "server.log") as process:
        yield process.url, root


async def run_on_server(base: str, path: str, source: str) -> tuple[str, str]:
    """Start a kernel and ask the server to run the notebook's cell c0 (set to ``source``).

    Returns the kernel id and the room id.
    """
    _, body = await session(base, path)
    room = f"json:notebook:{body['fileId']}"
    async with httpx.AsyncClient(headers=AUTH, timeout=60) as http:
        kernel = (await http.post(f"{base}api/kernels", json={"name": "python3"})).json()
        response = await http.post(
            f"{base}api/kernels/{kernel['id']}/execute",
            json={"cell_id": "c0", "document_id": room},
        )
        assert response.status_code == 202, response.text
    return kernel["id"], room


def outputs_of(client: YClient) -> list[dict[str, Any]]:
    """The first cell's outputs as this client sees them."""
    outputs: list[dict[str, Any]] = client.notebook.get()["cells"][0]["outputs"]
    return outputs


async def test_outputs_are_kept_with_every_client_gone(kernel_server: tuple[str, Path]) -> None:
    base, root = kernel_server
    code = "import time\nfor i in range(10):\n    print('line', i, flush=True)\n    time.sleep(0.3)"
    write_notebook(root / "nb.ipynb", code)
    async with connect(base, "nb.ipynb") as client:
        await run_on_server(base, "nb.ipynb", code)
        await client.wait_for(lambda: "line 1" in json.dumps(outputs_of(client)), timeout=60)
    # nobody is connected while the rest of the lines come
    with anyio.fail_after(60):
        while "line 9" not in (root / "nb.ipynb").read_text():
            await anyio.sleep(0.1)
    async with connect(base, "nb.ipynb") as later:
        await later.wait_for(lambda: later.notebook.get()["cells"][0]["execution_count"] == 1)
        (stream,) = outputs_of(later)
        assert stream["text"] == "".join(f"line {i}\n" for i in range(10))
    with anyio.fail_after(WAIT):
        while json.loads((root / "nb.ipynb").read_text())["cells"][0]["execution_count"] != 1:
            await anyio.sleep(0.1)
    saved = json.loads((root / "nb.ipynb").read_text())["cells"][0]
    assert "".join(saved["outputs"][0]["text"]) == "".join(f"line {i}\n" for i in range(10))
    assert saved["execution_count"] == 1


async def test_clear_output_update_display_and_errors(kernel_server: tuple[str, Path]) -> None:
    base, root = kernel_server
    code = (
        "from IPython.display import clear_output, display\n"
        "print('gone')\n"
        "clear_output(wait=True)\n"
        "h = display('first', display_id=True)\n"
        "h.update('second')\n"
        "1/0"
    )
    write_notebook(root / "nb.ipynb", code)
    async with connect(base, "nb.ipynb") as client:
        await run_on_server(base, "nb.ipynb", code)

        def finished() -> bool:
            cell = client.notebook.get()["cells"][0]
            return bool(cell["execution_count"]) and len(cell["outputs"]) == 2

        await client.wait_for(finished, timeout=60)
        display, error = outputs_of(client)
        assert display["output_type"] == "display_data"
        assert display["data"]["text/plain"] == "'second'"
        assert error["output_type"] == "error"
        assert error["ename"] == "ZeroDivisionError"


def execution_metadata(client: YClient) -> dict[str, Any] | None:
    """The first cell's ``metadata.execution`` as this client sees it."""
    metadata: dict[str, Any] = client.notebook.get()["cells"][0]["metadata"]
    return metadata.get("execution")


@pytest.mark.parametrize("record", [True, False])
async def test_execution_timings_in_cell_metadata(tmp_path: Path, record: bool) -> None:
    root = tmp_path / "root"
    root.mkdir()
    # The cell sleeps well past the 0.2 s the timings must show: they are the server's
    # arrival times, which a loaded machine can skew by some tens of milliseconds.
    code = "import time\ntime.sleep(0.5)\nprint('done')"
    stale = {"iopub.execute_input": "2020-01-01T00:00:00Z"}
    data = notebook(code)
    data["cells"][0]["metadata"]["execution"] = stale
    (root / "nb.ipynb").write_text(json.dumps(data))
    args = server_args(tmp_path, root, document_save_delay=0.2, record_timing=record)
    args += ["--enable", "kernelspecs", "--enable", "kernels"]
    with ServerProcess(args, log_path=tmp_path / "server.log") as process:
        async with connect(process.url, "nb.ipynb") as client:
            _, room = await run_on_server(process.url, "nb.ipynb", code)
            await client.wait_for(
                lambda: client.notebook.get()["cells"][0]["execution_count"] == 1, timeout=60
            )
            timing = execution_metadata(client)
            async with httpx.AsyncClient(headers=AUTH) as http:
                unknown = await http.post(
                    f"{process.url}api/kernels/undefined/execute",
                    json={"cell_id": "c0", "document_id": room},
                )
            assert unknown.status_code == 404, unknown.text
    if not record:
        assert timing is None  # dropped at the start of the run, as JupyterLab does
        return
    assert timing is not None
    keys = (
        "iopub.status.busy",
        "iopub.execute_input",
        "shell.execute_reply.started",
        "shell.execute_reply",
        "iopub.status.idle",
    )
    assert set(timing) == set(keys)
    moments = [datetime.fromisoformat(timing[key]) for key in keys]
    assert moments == sorted(moments)
    assert all(moment.tzinfo is not None for moment in moments)
    assert moments[3] - moments[1] >= timedelta(seconds=0.2)  # the cell slept 0.2 s
