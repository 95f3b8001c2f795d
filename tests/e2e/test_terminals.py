"""Terminals on a real server: real uvicorn on loopback, real PTYs, ``websockets`` clients."""

from __future__ import annotations

import base64
import json
import os
import signal
import socket
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager
from pathlib import Path
from typing import Any

import anyio
import httpx
import psutil
import pytest
import websockets
from websockets.asyncio.client import ClientConnection

from junction.plugins.terminals import TERMINALS
from junction.plugins.terminals.manager import PtyTerminals
from junction.testing import TEST_TOKEN, ServerProcess, serve_in_thread

pytestmark = [pytest.mark.e2e, pytest.mark.anyio]

AUTH = {"Authorization": f"token {TEST_TOKEN}"}
BASH = ["/bin/bash", "--norc", "--noprofile", "-i"]


class TermSocket:
    """A terminal WebSocket client speaking terminado's JSON protocol."""

    def __init__(self, connection: ClientConnection) -> None:
        self.connection = connection
        self.output = ""
        self.received = 0
        self.disconnected = False

    async def send(self, *message: Any) -> None:
        """Send one message, e.g. ``send("stdin", "ls\\r")``."""
        await self.connection.send(json.dumps(list(message)))

    async def type(self, text: str) -> None:
        """Type ``text`` into the terminal."""
        await self.send("stdin", text)

    async def receive(self) -> list[Any]:
        """The next message; stdout is also added to :attr:`output`."""
        message = json.loads(await self.connection.recv())
        assert isinstance(message, list)
        if message[0] == "stdout":
            self.received += len(message[1])
            self.output = (self.output + message[1])[-(1 << 20) :]
        elif message[0] == "disconnect":
            self.disconnected = True
        return message

    async def read_until(self, needle: str, timeout: float = 15) -> str:
        """Read until ``needle`` is in the output; returns the output so far (its last MiB)."""
        with anyio.fail_after(timeout):
            while needle not in self.output:
                await self.receive()
        return self.output

    async def wait_closed(self, timeout: float = 15) -> int | None:
        """Read until the server closes the socket; returns the close code."""
        with anyio.fail_after(timeout):
            try:
                while True:
                    await self.receive()
            except websockets.ConnectionClosed as closed:
                return closed.rcvd.code if closed.rcvd is not None else None


def ws_url(base: str, name: str) -> str:
    """The terminal WebSocket URL of terminal ``name`` on the server at ``base``."""
    return base.replace("http", "ws", 1) + f"terminals/websocket/{name}"


@asynccontextmanager
async def term_socket(
    base: str, name: str, *, setup: bool = True, **options: Any
) -> AsyncIterator[TermSocket]:
    """Connect to terminal ``name``; with ``setup``, check that ``["setup", {}]`` comes first."""
    options.setdefault("additional_headers", AUTH)
    async with websockets.connect(ws_url(base, name), **options) as connection:
        socket = TermSocket(connection)
        if setup:
            assert await socket.receive() == ["setup", {}]
        yield socket


@contextmanager
def idle_socket(base: str, name: str) -> Iterator[socket.socket]:
    """A terminal WebSocket that completes the handshake and then never reads, on a raw TCP
    socket with a tiny receive buffer: what the server sends piles up in the server."""
    host, port = base.split("//", 1)[1].split("/", 1)[0].rsplit(":", 1)
    path = "/" + base.split("//", 1)[1].split("/", 1)[1] + f"terminals/websocket/{name}"
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    sock.connect((host, int(port)))
    key = base64.b64encode(os.urandom(16)).decode()
    request = (
        f"GET {path} HTTP/1.1\r\nHost: {host}:{port}\r\nUpgrade: websocket\r\n"
        f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n"
        f"Authorization: token {TEST_TOKEN}\r\n\r\n"
    )
    sock.sendall(request.encode())
    head = b""
    while not head.endswith(b"\r\n\r\n"):  # byte by byte: read nothing past the headers
        head += sock.recv(1)
    assert head.startswith(b"HTTP/1.1 101"), head
    try:
        yield sock
    finally:
        sock.close()


def create(base: str, **body: Any) -> str:
    """POST a new terminal; returns its name."""
    response = httpx.post(base + "api/terminals", json=body, headers=AUTH)
    assert response.status_code == 200, response.text
    return str(response.json()["name"])


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, PtyTerminals]]:
    """One in-thread server for the module, running bash without rc files."""
    root = tmp_path_factory.mktemp("terminals")
    with serve_in_thread(
        enable=["terminals"],
        root_dir=root,
        plugin_settings={"terminals": {"shell_command": BASH, "client_queue_bytes": 65536}},
    ) as (url, app):
        service = app.state.services.get(TERMINALS)
        assert isinstance(service, PtyTerminals)
        yield url, service


async def test_a_command_runs_and_its_output_comes_back(server: tuple[str, Any]) -> None:
    base, _ = server
    name = create(base)
    async with term_socket(base, name) as socket:
        await socket.type("echo $((6*7))\r")
        await socket.read_until("42\r\n")


async def test_set_size_resizes_the_pty_and_is_clamped(server: tuple[str, Any]) -> None:
    base, _ = server
    name = create(base)
    async with term_socket(base, name) as socket:
        await socket.send("set_size", 33, 111, 600, 800)
        await socket.type('echo "<$(stty size)>"\r')
        await socket.read_until("<33 111>")
        await socket.send("set_size", 0, 100000, 0, 0)
        await socket.type('echo "[$(stty size)]"\r')
        await socket.read_until("[1 1000]")


async def test_two_clients_both_see_output_and_both_may_type(server: tuple[str, Any]) -> None:
    base, _ = server
    name = create(base)
    async with term_socket(base, name) as first, term_socket(base, name) as second:
        await first.type("echo one-$((1+1))\r")
        await first.read_until("one-2\r\n")
        await second.read_until("one-2\r\n")
        await second.type("echo two-$((2+2))\r")
        await first.read_until("two-4\r\n")
        await second.read_until("two-4\r\n")


async def test_a_reconnecting_client_gets_the_scrollback(server: tuple[str, Any]) -> None:
    base, _ = server
    name = create(base)
    async with term_socket(base, name) as socket:
        await socket.type("echo mark-$((3*3))\r")
        await socket.read_until("mark-9\r\n")
    async with term_socket(base, name) as again:
        replay = await again.receive()
        assert replay[0] == "stdout"
        assert "mark-9\r\n" in replay[1]


async def test_delete_kills_the_shell_and_its_children(server: tuple[str, Any]) -> None:
    base, service = server
    name = create(base)
    async with term_socket(base, name) as socket:
        await socket.type("sleep 600 & sleep 601\r")
        shell = psutil.Process(service.terminal(name).pid)
        with anyio.fail_after(15):
            while len(sleeps := _sleeps(shell)) < 2:
                await anyio.sleep(0.05)
        response = httpx.delete(base + f"api/terminals/{name}", headers=AUTH)
        assert response.status_code == 204
        assert all(_dead(process) for process in [shell, *sleeps])  # gone already
        assert await socket.wait_closed() == 1000
        assert socket.disconnected
    assert httpx.get(base + f"api/terminals/{name}", headers=AUTH).status_code == 404


def _dead(process: psutil.Process) -> bool:
    """Exited: gone, or a zombie its new parent has not reaped yet."""
    try:
        return process.status() == psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return True


def _sleeps(shell: psutil.Process) -> list[psutil.Process]:
    return [
        child
        for child in shell.children(recursive=True)
        if child.cmdline()[:1] == ["sleep"] and child.status() != psutil.STATUS_ZOMBIE
    ]


async def test_exit_sends_disconnect_and_removes_the_terminal(server: tuple[str, Any]) -> None:
    base, service = server
    name = create(base)
    async with term_socket(base, name) as socket:
        await socket.type("exit\r")
        assert await socket.wait_closed() == 1000
        assert socket.disconnected
    with anyio.fail_after(10):
        while service.exists(name):
            await anyio.sleep(0.05)


@pytest.mark.parametrize(
    ("frame", "code"),
    [
        ("not json", 1007),
        (b"\x00binary", 1003),
        ('{"stdin": "x"}', 1007),
        ("[]", 1007),
        ('["stdin", 5]', 1007),
        ('["set_size", "a", 3]', 1007),
        ('["set_size", 3]', 1007),
    ],
)
async def test_a_malformed_frame_closes_that_socket_only(
    server: tuple[str, Any], frame: str | bytes, code: int
) -> None:
    base, _ = server
    name = create(base)
    async with term_socket(base, name) as bystander:
        async with term_socket(base, name) as offender:
            await offender.connection.send(frame)
            assert await offender.wait_closed() == code
            assert offender.connection.close_reason
        await bystander.type("echo still-$((5+5))\r")
        await bystander.read_until("still-10\r\n")


async def test_unknown_message_names_are_ignored(server: tuple[str, Any]) -> None:
    base, _ = server
    async with term_socket(base, create(base)) as socket:
        await socket.send("nonsense", 1, 2)
        await socket.type("echo fine-$((4+4))\r")
        await socket.read_until("fine-8\r\n")


async def test_an_unknown_terminal_is_refused_with_404(server: tuple[str, Any]) -> None:
    base, _ = server
    with pytest.raises(websockets.InvalidStatus) as refused:
        async with term_socket(base, "nope", setup=False):
            pass
    assert refused.value.response.status_code == 404
    assert b"Terminal not found: nope" in refused.value.response.body


async def test_the_websocket_needs_a_token(server: tuple[str, Any]) -> None:
    base, _ = server
    name = create(base)
    with pytest.raises(websockets.InvalidStatus) as refused:
        async with term_socket(base, name, setup=False, additional_headers={}):
            pass
    assert refused.value.response.status_code == 403


async def test_a_foreign_origin_is_refused(server: tuple[str, Any]) -> None:
    base, _ = server
    name = create(base)
    with pytest.raises(websockets.InvalidStatus) as refused:
        async with term_socket(base, name, setup=False, origin="http://evil.example"):
            pass
    assert refused.value.response.status_code == 403
    async with term_socket(base, name, origin=base.rstrip("/")) as same:
        await same.type("echo ok-$((1+6))\r")
        await same.read_until("ok-7")


async def test_a_client_that_never_reads_is_closed_while_another_keeps_up(
    server: tuple[str, Any],
) -> None:
    """A flood (``yes``) with one client not reading: the reader gets megabytes, the
    non-reader is closed (1013) once far behind, and its outbox never grows past the bound."""
    base, service = server
    name = create(base)
    terminal = service.terminal(name)
    with idle_socket(base, name):
        (idle,) = terminal.clients
        async with term_socket(base, name) as reader:
            await reader.type("yes\r")
            largest = 0
            with anyio.fail_after(60):
                while idle in terminal.clients:  # until the idle client is let go
                    await reader.receive()
                    largest = max([largest, *(client.queued for client in terminal.clients)])
                while reader.received < 1 << 20:  # and the reader still gets output
                    await reader.receive()
            assert idle.close is not None
            assert idle.close[0] == 1013
            assert largest <= 4 * 65536 + 65536
            await reader.type("\x03")
    assert httpx.delete(base + f"api/terminals/{name}", headers=AUTH).status_code == 204


# -- a server process: flood memory and SIGKILL ----------------------------------------------


def terminals_server(root: Path, *settings: str) -> ServerProcess:
    """An unstarted ``junction`` with only the terminals plugin, plus ``--set`` values."""
    args = ["--profile", "none", "--enable", "terminals", "--port", "0", "--root-dir", str(root)]
    args += ["--set", f"terminals.shell_command={json.dumps(BASH)}"]
    for setting in settings:
        args += ["--set", setting]
    return ServerProcess(args, log_path=root / "server.log")


async def test_a_flood_to_a_client_that_never_reads_keeps_server_memory_bounded(
    tmp_path: Path,
) -> None:
    with terminals_server(tmp_path) as server:
        name = create(server.url)
        process = psutil.Process(server.pid)
        async with term_socket(server.url, name) as typist:
            await typist.type("echo warm-$((1+1))\r")
            await typist.read_until("warm-2")
        with idle_socket(server.url, name):
            baseline = process.memory_info().rss
            async with term_socket(server.url, name) as typist:
                await typist.type("yes $(printf '%.0sy' $(seq 200))\r")
            # ``yes`` writes as fast as the PTY lets it; once the client's outbox is full the
            # server stops reading, so ``yes`` blocks: its CPU time stops growing.
            yes = await _wait_child(process, "yes")
            with anyio.fail_after(60):
                while True:
                    before = yes.cpu_times().user + yes.cpu_times().system
                    await anyio.sleep(0.5)
                    after = yes.cpu_times().user + yes.cpu_times().system
                    if after - before < 0.05:
                        break
            grown = process.memory_info().rss - baseline
            assert grown < 64 << 20, f"server grew by {grown >> 20} MiB"
            assert httpx.get(server.url + "api/terminals", headers=AUTH).status_code == 200


async def _wait_child(process: psutil.Process, command: str) -> psutil.Process:
    with anyio.fail_after(15):
        while True:
            for child in process.children(recursive=True):
                if child.name() == command:
                    return child
            await anyio.sleep(0.05)


async def test_sigkill_of_the_server_leaves_no_shell_or_child_running(tmp_path: Path) -> None:
    with terminals_server(tmp_path) as server:
        process = psutil.Process(server.pid)
        names = [create(server.url), create(server.url)]
        for name in names:
            async with term_socket(server.url, name) as socket:
                await socket.type("sleep 600 & sleep 601 &\r")
                await socket.type("echo started-$((2*5))\r")
                await socket.read_until("started-10")
        with anyio.fail_after(15):
            while len([p for p in process.children(recursive=True) if p.name() == "sleep"]) < 4:
                await anyio.sleep(0.05)
        everything = process.children(recursive=True)
        assert len([p for p in everything if p.name() == "bash"]) == 2
        server.stop(signal.SIGKILL)
        with anyio.fail_after(15):
            while not all(_dead(process) for process in everything):
                await anyio.sleep(0.05)


async def test_sigterm_of_the_server_stops_every_shell_and_child_first(tmp_path: Path) -> None:
    with terminals_server(tmp_path) as server:
        process = psutil.Process(server.pid)
        name = create(server.url)
        async with term_socket(server.url, name) as socket:
            await socket.type("trap '' HUP INT TERM; sleep 600 & echo started-$((3*5))\r")
            await socket.read_until("started-15")
        with anyio.fail_after(15):
            while not [p for p in process.children(recursive=True) if p.name() == "sleep"]:
                await anyio.sleep(0.05)
        everything = [
            p
            for p in process.children(recursive=True)
            if not any(part.endswith("reaper.py") for part in p.cmdline())
        ]
        assert len(everything) >= 2
        assert server.stop(signal.SIGTERM) == 0
        # Stopped by the plugin before the server exited, not later by the reaper.
        assert all(_dead(p) for p in everything), [p for p in everything if not _dead(p)]
