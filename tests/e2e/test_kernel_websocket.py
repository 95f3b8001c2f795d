"""The kernel WebSocket on a real server: real uvicorn, real ipykernel kernels, real clients.

Also home of :class:`KernelSocket`, a small test client speaking both kernel WebSocket
protocols with its own encoder (independent of the server's), used by the other
``test_kernel_*`` modules.
"""

from __future__ import annotations

import itertools
import json
import os
import signal
import socket
import struct
import sys
import textwrap
import threading
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import anyio
import httpx
import pytest
import uvicorn
import websockets
from websockets.asyncio.client import ClientConnection

from junction.app import create_app
from junction.server import uvicorn_config
from junction.testing import TEST_TOKEN, ServerProcess, make_settings

pytestmark = [pytest.mark.e2e, pytest.mark.anyio]

V1 = "v1.kernel.websocket.jupyter.org"
FRAME_LIMIT = 16 << 20
AUTH = {"Authorization": f"token {TEST_TOKEN}"}


# -- a test client ----------------------------------------------------------------------------


@dataclass
class Msg:
    """A decoded kernel message."""

    channel: str
    header: dict[str, Any]
    parent_header: dict[str, Any]
    metadata: dict[str, Any]
    content: dict[str, Any]
    buffers: list[bytes] = field(default_factory=list)

    @property
    def msg_type(self) -> str:
        return str(self.header["msg_type"])

    @property
    def parent_id(self) -> str | None:
        value = self.parent_header.get("msg_id")
        return str(value) if value is not None else None


@dataclass
class Reply:
    """What one request produced: its iopub messages (in order) and its reply."""

    iopub: list[Msg]
    reply: Msg

    def text(self, name: str = "stdout") -> str:
        return "".join(
            m.content["text"]
            for m in self.iopub
            if m.msg_type == "stream" and m.content["name"] == name
        )

    def of_type(self, msg_type: str) -> list[Msg]:
        return [m for m in self.iopub if m.msg_type == msg_type]


def encode(message: dict[str, Any], buffers: list[bytes], *, v1: bool) -> bytes | str:
    """A client frame, written from the protocol description (not the server's code)."""
    if v1:
        parts = [
            json.dumps(message[key]).encode()
            for key in ("header", "parent_header", "metadata", "content")
        ]
        channel = message["channel"].encode()
        count = 2 + len(parts) + len(buffers)
        offsets = [8 * (count + 1)]
        for piece in (channel, *parts, *buffers):
            offsets.append(offsets[-1] + len(piece))
        return struct.pack(f"<{count + 1}Q", count, *offsets) + b"".join(
            [channel, *parts, *buffers]
        )
    if not buffers:
        return json.dumps(message)
    body = json.dumps(message).encode()
    count = 1 + len(buffers)
    offsets = [4 * (count + 1)]
    for piece in (body, *buffers[:-1]):
        offsets.append(offsets[-1] + len(piece))
    return struct.pack(f">{count + 1}I", count, *offsets) + body + b"".join(buffers)


def decode(frame: bytes | str, *, v1: bool) -> Msg:
    """A server frame, decoded per the protocol description."""
    if v1:
        assert isinstance(frame, bytes), "v1 frames are binary"
        count = struct.unpack_from("<Q", frame)[0]
        offsets = struct.unpack_from(f"<{count}Q", frame, 8)
        assert offsets[-1] == len(frame)
        pieces = [frame[a:b] for a, b in itertools.pairwise(offsets)]
        header, parent, metadata, content = (json.loads(p) for p in pieces[1:5])
        return Msg(pieces[0].decode(), header, parent, metadata, content, list(pieces[5:]))
    if isinstance(frame, str):
        value = json.loads(frame)
        assert value["msg_id"] == value["header"]["msg_id"]
        assert value["msg_type"] == value["header"]["msg_type"]
        buffers: list[bytes] = []
    else:
        count = struct.unpack_from(">I", frame)[0]
        bounds = [*struct.unpack_from(f">{count}I", frame, 4), len(frame)]
        value = json.loads(frame[bounds[0] : bounds[1]])
        buffers = [frame[a:b] for a, b in itertools.pairwise(bounds[1:])]
    return Msg(
        value["channel"],
        value["header"],
        value["parent_header"],
        value["metadata"],
        value["content"],
        buffers,
    )


class KernelSocket:
    """One client of a kernel WebSocket."""

    def __init__(self, ws: ClientConnection, *, v1: bool, session_id: str) -> None:
        self.ws = ws
        self.v1 = v1
        self.session_id = session_id
        self.seen: list[Msg] = []

    def message(
        self,
        channel: str,
        msg_type: str,
        content: dict[str, Any],
        parent: dict[str, Any] | None = None,
    ) -> dict[str, Any]:
        header = {
            "msg_id": uuid.uuid4().hex,
            "msg_type": msg_type,
            "username": "tester",
            "session": self.session_id,
            "date": datetime.now(UTC).isoformat(),
            "version": "5.4",
        }
        return {
            "channel": channel,
            "header": header,
            "parent_header": parent or {},
            "metadata": {},
            "content": content,
        }

    async def send(
        self,
        channel: str,
        msg_type: str,
        content: dict[str, Any],
        *,
        buffers: list[bytes] | None = None,
        parent: dict[str, Any] | None = None,
    ) -> str:
        message = self.message(channel, msg_type, content, parent)
        await self.ws.send(encode(message, buffers or [], v1=self.v1))
        return str(message["header"]["msg_id"])

    async def recv(self, timeout: float = 30) -> Msg:
        with anyio.fail_after(timeout):
            message = decode(await self.ws.recv(), v1=self.v1)
        self.seen.append(message)
        return message

    async def until(self, predicate: Any, timeout: float = 30) -> list[Msg]:
        """Messages up to and including the first one matching ``predicate``."""
        got: list[Msg] = []
        with anyio.fail_after(timeout):
            while True:
                message = await self.recv()
                got.append(message)
                if predicate(message):
                    return got

    async def seen_or_next(self, predicate: Any, timeout: float = 30) -> Msg:
        """The first message matching ``predicate``, already received or still to come."""
        for message in self.seen:
            if predicate(message):
                return message
        return (await self.until(predicate, timeout))[-1]

    async def collect(self, msg_id: str, timeout: float = 30) -> Reply:
        """Everything a request produced, until its reply and its idle status arrived."""
        iopub: list[Msg] = []
        reply: Msg | None = None
        idle = False
        with anyio.fail_after(timeout):
            while reply is None or not idle:
                message = await self.recv()
                if message.parent_id != msg_id:
                    continue
                if message.channel == "iopub":
                    iopub.append(message)
                    if message.msg_type == "status":
                        idle = idle or message.content["execution_state"] == "idle"
                elif message.msg_type.endswith("_reply"):
                    reply = message
        return Reply(iopub, reply)

    async def execute(self, code: str, timeout: float = 30, **options: Any) -> Reply:
        msg_id = await self.send("shell", "execute_request", execute_content(code, **options))
        return await self.collect(msg_id, timeout)


def execute_content(code: str, **options: Any) -> dict[str, Any]:
    content = {
        "code": code,
        "silent": False,
        "store_history": True,
        "user_expressions": {},
        "allow_stdin": False,
        "stop_on_error": True,
    }
    content.update(options)
    return content


def ws_url(server: ServerProcess, kernel_id: str, session_id: str) -> str:
    base = server.url.replace("http://", "ws://", 1)
    return f"{base}api/kernels/{kernel_id}/channels?session_id={session_id}"


@asynccontextmanager
async def kernel_socket(
    server: ServerProcess,
    kernel_id: str,
    *,
    v1: bool = True,
    session_id: str | None = None,
    **options: Any,
) -> AsyncIterator[KernelSocket]:
    """A connected :class:`KernelSocket` (v1 unless ``v1=False``)."""
    session_id = session_id or uuid.uuid4().hex
    async with websockets.connect(
        ws_url(server, kernel_id, session_id),
        additional_headers=AUTH,
        subprotocols=[websockets.Subprotocol(V1)] if v1 else None,
        max_size=None,
        **options,
    ) as ws:
        assert ws.subprotocol == (V1 if v1 else None)
        yield KernelSocket(ws, v1=v1, session_id=session_id)


def start_kernel(server: ServerProcess, **body: Any) -> str:
    response = httpx.post(server.url + "api/kernels", headers=AUTH, json=body, timeout=60)
    assert response.status_code == 201, response.text
    return str(response.json()["id"])


def kernel_model(server: ServerProcess, kernel_id: str) -> dict[str, Any]:
    response = httpx.get(server.url + f"api/kernels/{kernel_id}", headers=AUTH)
    assert response.status_code == 200, response.text
    result: dict[str, Any] = response.json()
    return result


async def wait_model(
    server: ServerProcess, kernel_id: str, predicate: Any, timeout: float = 30
) -> dict[str, Any]:
    """Poll a kernel's model until ``predicate(model)`` holds."""
    with anyio.fail_after(timeout):
        while True:
            model = kernel_model(server, kernel_id)
            if predicate(model):
                return model
            await anyio.sleep(0.05)


async def kernel_pid(socket: KernelSocket) -> int:
    reply = await socket.execute("import os; print(os.getpid())")
    return int(reply.text())


def message_interrupt_spec(jupyter_path: Path) -> None:
    """Install ``by-message``: ipykernel interrupted with ``interrupt_request``, not SIGINT."""
    directory = jupyter_path / "kernels" / "by-message"
    directory.mkdir(parents=True)
    spec = {
        "argv": [sys.executable, "-m", "ipykernel_launcher", "-f", "{connection_file}"],
        "display_name": "Interrupted by message",
        "language": "python",
        "interrupt_mode": "message",
    }
    (directory / "kernel.json").write_text(json.dumps(spec))


def fragile_spec(jupyter_path: Path) -> None:
    """Install ``fragile``: an ipykernel that starts once, then exits at every restart."""
    directory = jupyter_path / "kernels" / "fragile"
    directory.mkdir(parents=True)
    launcher = textwrap.dedent(
        """
        import os, sys
        marker = sys.argv[1] + ".started"
        if os.path.exists(marker):
            sys.exit(3)
        open(marker, "w").close()
        from ipykernel import kernelapp
        kernelapp.launch_new_instance(argv=["-f", sys.argv[1]])
        """
    )
    (directory / "launch.py").write_text(launcher)
    spec = {
        "argv": [sys.executable, str(directory / "launch.py"), "{connection_file}"],
        "display_name": "Fragile",
        "language": "python",
    }
    (directory / "kernel.json").write_text(json.dumps(spec))


# -- the server these tests share -------------------------------------------------------------


def kernels_server(root: Path, *settings: str) -> ServerProcess:
    """An unstarted ``junction`` with only kernelspecs and kernels, plus ``--set`` values."""
    args = ["--profile", "none", "--enable", "kernelspecs", "--enable", "kernels"]
    args += ["--port", "0", "--root-dir", str(root)]
    for setting in settings:
        args += ["--set", setting]
    return ServerProcess(args, log_path=root / "server.log")


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    """One server for the module: small frame limit, fast death detection, a fragile spec."""
    root = tmp_path_factory.mktemp("kernel-ws")
    fragile_spec(root / "share")
    message_interrupt_spec(root / "share")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("JUPYTER_PATH", str(root / "share"))
        process = kernels_server(
            root,
            f"kernels.max_message_size={FRAME_LIMIT}",
            "kernels.monitor_interval=0.1",
            "kernels.restart_limit=2",
        )
        process.start()
    yield process
    process.stop()


@pytest.fixture(scope="module")
def kernel(server: ServerProcess) -> str:
    """A kernel shared by the tests that leave it as they found it."""
    return start_kernel(server)


@pytest.fixture(params=[True, False], ids=["v1", "json"])
def v1(request: pytest.FixtureRequest) -> bool:
    """Run a test over both protocols."""
    return bool(request.param)


# -- execution ----------------------------------------------------------------------------


async def test_execute_streams_displays_results_and_errors(
    server: ServerProcess, kernel: str, v1: bool
) -> None:
    code = textwrap.dedent(
        """
        import sys
        from IPython.display import display
        print("to stdout")
        print("to stderr", file=sys.stderr)
        display({"text/plain": "shown"}, raw=True)
        6 * 7
        """
    )
    async with kernel_socket(server, kernel, v1=v1) as socket:
        ok = await socket.execute(code)
        failed = await socket.execute("1 / 0")
    assert ok.reply.content["status"] == "ok"
    assert ok.text("stdout") == "to stdout\n"
    assert ok.text("stderr") == "to stderr\n"
    assert [m.content["data"] for m in ok.of_type("display_data")] == [{"text/plain": "shown"}]
    [result] = ok.of_type("execute_result")
    assert result.content["data"]["text/plain"] == "42"
    assert [m.content["execution_state"] for m in ok.of_type("status")] == ["busy", "idle"]
    assert failed.reply.content["status"] == "error"
    [error] = failed.of_type("error")
    assert error.content["ename"] == "ZeroDivisionError"


async def test_input_round_trips_over_stdin(server: ServerProcess, kernel: str, v1: bool) -> None:
    async with kernel_socket(server, kernel, v1=v1) as socket:
        msg_id = await socket.send(
            "shell",
            "execute_request",
            execute_content("name = input('name? '); print('hello', name)", allow_stdin=True),
        )
        [*_, request] = await socket.until(lambda m: m.msg_type == "input_request")
        assert request.channel == "stdin"
        assert request.content["prompt"] == "name? "
        assert request.parent_id == msg_id
        await socket.send("stdin", "input_reply", {"value": "ana"}, parent=request.header)
        reply = await socket.collect(msg_id)
    assert reply.text() == "hello ana\n"


ECHO_TARGET = textwrap.dedent(
    """
    import comm
    def _echo_target(channel, opened):
        @channel.on_msg
        def _echo(msg):
            channel.send(
                data={"echo": msg["content"]["data"]},
                buffers=[bytes(b)[::-1] for b in msg["buffers"]],
            )
    comm.get_comm_manager().register_target("echo", _echo_target)
    """
)


async def _echo_comm(socket: KernelSocket, buffers: list[bytes]) -> list[Msg]:
    """Open an ``echo`` comm, send ``buffers`` on it; return the kernel's echo."""
    assert (await socket.execute(ECHO_TARGET)).reply.content["status"] == "ok"
    comm_id = uuid.uuid4().hex
    await socket.send("shell", "comm_open", {"comm_id": comm_id, "target_name": "echo", "data": {}})
    sent = await socket.send(
        "shell", "comm_msg", {"comm_id": comm_id, "data": {"n": 1}}, buffers=buffers
    )
    [*_, echoed] = await socket.until(lambda m: m.msg_type == "comm_msg" and m.parent_id == sent)
    assert echoed.channel == "iopub"
    assert echoed.content["data"] == {"echo": {"n": 1}}
    return [echoed]


async def test_comm_messages_carry_binary_buffers_both_ways(
    server: ServerProcess, kernel: str, v1: bool
) -> None:
    buffers = [bytes(range(256)), b"\x00" * 70_000 + b"end"]
    async with kernel_socket(server, kernel, v1=v1) as socket:
        [echoed] = await _echo_comm(socket, buffers)
    assert echoed.buffers == [buffer[::-1] for buffer in buffers]


async def test_two_clients_both_get_iopub_and_only_the_asker_gets_the_reply(
    server: ServerProcess, kernel: str
) -> None:
    async with (
        kernel_socket(server, kernel, v1=True) as asker,
        kernel_socket(server, kernel, v1=False) as watcher,
    ):
        assert kernel_model(server, kernel)["connections"] == 2
        asked = await asker.execute("print('for everyone')")
        assert asked.text() == "for everyone\n"
        own = await watcher.send("shell", "kernel_info_request", {})
        await watcher.collect(own)
    seen_by_watcher = [m for m in watcher.seen if m.parent_id == asked.reply.parent_id]
    # The kernel may flush a print as one stream message or two ("for everyone", "\n").
    streamed = "".join(m.content["text"] for m in seen_by_watcher if m.msg_type == "stream")
    assert streamed == "for everyone\n"
    assert all(m.channel == "iopub" for m in seen_by_watcher)


@pytest.mark.parametrize("mode", ["signal", "message"])
async def test_interrupt_stops_a_cell_sleeping_in_the_kernel(
    server: ServerProcess, kernel: str, mode: str
) -> None:
    if mode == "message":
        kernel = start_kernel(server, name="by-message")
    async with kernel_socket(server, kernel) as socket:
        msg_id = await socket.send(
            "shell", "execute_request", execute_content("import time; time.sleep(60)")
        )
        await socket.until(lambda m: m.msg_type == "execute_input" and m.parent_id == msg_id)
        response = httpx.post(server.url + f"api/kernels/{kernel}/interrupt", headers=AUTH)
        assert response.status_code == 204
        interrupted = await socket.collect(msg_id, timeout=10)
        after = await socket.execute("'still here'")
    assert interrupted.reply.content["status"] == "error"
    assert interrupted.of_type("error")[0].content["ename"] == "KeyboardInterrupt"
    assert after.of_type("execute_result")[0].content["data"]["text/plain"] == "'still here'"
    if mode == "message":
        httpx.delete(server.url + f"api/kernels/{kernel}", headers=AUTH)


async def test_messages_over_ten_mebibytes_pass_both_ways(
    server: ServerProcess, kernel: str, v1: bool
) -> None:
    big = os.urandom(12 << 20)
    async with kernel_socket(server, kernel, v1=v1) as socket:
        [echoed] = await _echo_comm(socket, [big])
    assert echoed.buffers == [big[::-1]]


# -- restarts and deaths ----------------------------------------------------------------------


async def test_restart_keeps_the_websocket_attached(server: ServerProcess) -> None:
    kernel_id = start_kernel(server)
    async with kernel_socket(server, kernel_id) as socket:
        await socket.execute("remembered = 1")
        response = httpx.post(
            server.url + f"api/kernels/{kernel_id}/restart", headers=AUTH, timeout=60
        )
        assert response.status_code == 200
        assert response.json()["connections"] == 1
        after = await socket.execute("remembered")
    assert after.reply.content["status"] == "error"
    assert after.of_type("error")[0].content["ename"] == "NameError"
    assert after.reply.content["execution_count"] == 1  # a fresh kernel counts from 1
    httpx.delete(server.url + f"api/kernels/{kernel_id}", headers=AUTH)


async def test_killed_kernel_is_reported_restarted_and_answers_for_what_it_owed(
    server: ServerProcess,
) -> None:
    kernel_id = start_kernel(server)
    async with (
        kernel_socket(server, kernel_id, v1=True) as asker,
        kernel_socket(server, kernel_id, v1=False) as watcher,
    ):
        pid = await kernel_pid(asker)
        msg_id = await asker.send(
            "shell", "execute_request", execute_content("import time; time.sleep(60)")
        )
        await asker.until(lambda m: m.msg_type == "execute_input" and m.parent_id == msg_id)
        os.kill(pid, signal.SIGKILL)

        owed = await asker.collect(msg_id)
        assert owed.reply.content["status"] == "error"
        assert owed.reply.content["ename"] == "KernelDied"
        for client in (asker, watcher):
            await client.seen_or_next(
                lambda m: m.msg_type == "status" and m.content["execution_state"] == "restarting"
            )
        model = await wait_model(server, kernel_id, lambda m: m["execution_state"] == "idle")
        assert model["connections"] == 2
        again = await asker.execute("1 + 1")
        assert again.of_type("execute_result")[0].content["data"]["text/plain"] == "2"
        assert await kernel_pid(watcher) != pid
    httpx.delete(server.url + f"api/kernels/{kernel_id}", headers=AUTH)


async def test_kernel_that_cannot_restart_is_reported_dead(server: ServerProcess) -> None:
    kernel_id = start_kernel(server, name="fragile")
    async with kernel_socket(server, kernel_id) as socket:
        os.kill(await kernel_pid(socket), signal.SIGKILL)
        states = await socket.until(
            lambda m: m.msg_type == "status" and m.content["execution_state"] == "dead"
        )
    assert "restarting" in [m.content.get("execution_state") for m in states]
    model = kernel_model(server, kernel_id)
    assert model["execution_state"] == "dead"
    assert "not restarted again" in model["reason"]
    response = httpx.delete(server.url + f"api/kernels/{kernel_id}", headers=AUTH)
    assert response.status_code == 204


# -- reconnecting -----------------------------------------------------------------------------


async def test_reconnect_with_the_same_session_id_replays_missed_messages_in_order(
    server: ServerProcess, kernel: str, tmp_path: Path
) -> None:
    go = tmp_path / "go"
    code = textwrap.dedent(
        f"""
        import os, time
        while not os.path.exists({str(go)!r}):
            time.sleep(0.01)
        for i in range(200):
            print(i, flush=True)
        """
    )
    session_id = uuid.uuid4().hex
    before = kernel_model(server, kernel)["connections"]
    async with kernel_socket(server, kernel, session_id=session_id) as dropped:
        msg_id = await dropped.send("shell", "execute_request", execute_content(code))
        await dropped.until(lambda m: m.msg_type == "execute_input" and m.parent_id == msg_id)
        dropped.ws.transport.abort()  # the network goes away: no close frame
    await wait_model(server, kernel, lambda m: m["connections"] == before)
    go.touch()  # the output is made while the client is away
    async with kernel_socket(server, kernel, session_id=session_id) as back:
        replayed = await back.collect(msg_id)
    assert replayed.text() == "".join(f"{i}\n" for i in range(200))
    assert replayed.reply.content["status"] == "ok"


async def test_reconnect_sends_again_a_reply_that_was_lost_in_flight(
    server: ServerProcess, kernel: str
) -> None:
    session_id = uuid.uuid4().hex
    before = kernel_model(server, kernel)["connections"]
    async with kernel_socket(server, kernel) as watcher:
        async with kernel_socket(server, kernel, session_id=session_id) as dropped:
            msg_id = await dropped.send("shell", "execute_request", execute_content("40 + 2"))
            # The kernel answers in order: once the watcher has its reply, ours went out too.
            await watcher.collect(await watcher.send("shell", "kernel_info_request", {}))
            dropped.ws.transport.abort()  # the reply was never read: lost with the connection
        await wait_model(server, kernel, lambda m: m["connections"] == before + 1)
    async with kernel_socket(server, kernel, session_id=session_id) as back:
        again = await back.collect(msg_id)
    assert again.reply.content["status"] == "ok"
    assert again.reply.content["execution_count"] >= 1


# -- bad input --------------------------------------------------------------------------------


def _v1_frame(channel: str = "shell") -> bytes:
    message = {
        "channel": channel,
        "header": {"msg_id": "x", "msg_type": "kernel_info_request"},
        "parent_header": {},
        "metadata": {},
        "content": {},
    }
    frame = encode(message, [], v1=True)
    assert isinstance(frame, bytes)
    return frame


async def _read_until_closed(ws: ClientConnection) -> None:
    while True:
        await ws.recv()


BAD_FRAMES: dict[str, tuple[bool, bytes | str, int, str]] = {
    "truncated-v1": (True, _v1_frame()[:40], 1007, "malformed v1 frame"),
    "lying-offsets-v1": (True, _v1_frame()[:-5], 1007, "malformed v1 frame"),
    "unknown-channel-v1": (True, _v1_frame("nope"), 1007, "unknown channel 'nope'"),
    "text-on-v1": (True, "{}", 1003, "expects binary frames"),
    "not-json": (False, "this is not json", 1007, "text frame is not JSON"),
    "no-header": (False, json.dumps({"channel": "shell"}), 1007, "msg_id and msg_type"),
    "unknown-channel-json": (
        False,
        json.dumps({"channel": "iopub", "header": {"msg_id": "x", "msg_type": "y"}}),
        1007,
        "unknown channel 'iopub'",
    ),
    "truncated-binary-json": (False, b"\x00\x00\x00\x05\x00", 1007, "binary frame"),
    "oversized": (True, b"\x00" * (FRAME_LIMIT + 1), 1009, "kernels.max_message_size"),
}


@pytest.mark.parametrize("case", list(BAD_FRAMES))
async def test_bad_frames_close_only_that_socket_with_a_clear_code_and_reason(
    server: ServerProcess, kernel: str, case: str
) -> None:
    v1, frame, code, reason = BAD_FRAMES[case]
    async with kernel_socket(server, kernel, v1=False) as bystander:
        async with kernel_socket(server, kernel, v1=v1) as offender:
            await offender.ws.send(frame)
            with pytest.raises(websockets.ConnectionClosedError) as closed:
                await _read_until_closed(offender.ws)
        assert closed.value.rcvd is not None
        assert closed.value.rcvd.code == code
        assert reason in closed.value.rcvd.reason
        still = await bystander.execute("'fine'")
    assert still.reply.content["status"] == "ok"


def test_accepted_connections_have_tcp_nodelay() -> None:
    """Small kernel messages must not wait for Nagle's algorithm (~40 ms with delayed ACKs)."""
    settings = make_settings(ip="127.0.0.1", enable=["kernelspecs"])
    server = uvicorn.Server(uvicorn_config(create_app(settings), settings))
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [listener]}, daemon=True)
    thread.start()
    try:
        while not server.started:
            assert thread.is_alive()
            time.sleep(0.01)
        port = listener.getsockname()[1]
        with httpx.Client(headers=AUTH) as client:  # keeps its connection open
            assert client.get(f"http://127.0.0.1:{port}/api/kernelspecs").status_code == 200
            options = [
                connection.transport.get_extra_info("socket").getsockopt(
                    socket.IPPROTO_TCP, socket.TCP_NODELAY
                )
                for connection in server.server_state.connections
            ]
    finally:
        server.should_exit = True
        thread.join(30)
        listener.close()
    assert options
    assert all(options)


async def test_unknown_kernel_websocket_is_refused_with_404(server: ServerProcess) -> None:
    missing = "00000000-0000-4000-8000-000000000000"
    with pytest.raises(websockets.InvalidStatus) as refused:
        async with kernel_socket(server, missing):
            pass
    assert refused.value.response.status_code == 404
    assert b"Kernel does not exist" in refused.value.response.body
