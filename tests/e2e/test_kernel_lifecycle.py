"""Kernels and the server's own life: many sockets, SIGTERM, SIGKILL. Real processes only."""

from __future__ import annotations

import json
import signal
import sys
from contextlib import AsyncExitStack
from pathlib import Path

import anyio
import httpx
import psutil
import pytest
from test_kernel_websocket import (
    AUTH,
    KernelSocket,
    execute_content,
    kernel_socket,
    kernels_server,
    start_kernel,
)

from junction.testing import ServerProcess

pytestmark = [pytest.mark.e2e, pytest.mark.anyio]


def _kernel_processes(server: ServerProcess, kernel_id: str) -> list[psutil.Process]:
    """The server's descendants whose command line names this kernel's connection file."""
    return [
        child
        for child in psutil.Process(server.pid).children(recursive=True)
        if any(f"kernel-{kernel_id}.json" in part for part in child.cmdline())
    ]


def _gone(process: psutil.Process) -> bool:
    try:
        return process.status() == psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return True


async def _wait_gone(processes: list[psutil.Process], timeout: float) -> None:
    with anyio.fail_after(timeout):
        while not all(_gone(process) for process in processes):
            await anyio.sleep(0.05)


def _open_fds(pid: int) -> int:
    return len(list(Path(f"/proc/{pid}/fd").iterdir()))


async def test_two_hundred_websockets_then_sigterm_leaves_no_kernel(tmp_path: Path) -> None:
    with kernels_server(tmp_path) as server:
        kernels = [start_kernel(server) for _ in range(2)]
        processes = [p for k in kernels for p in _kernel_processes(server, k)]
        assert len(processes) == 2
        fds_before = _open_fds(server.pid)
        async with AsyncExitStack() as stack:
            sockets: dict[str, list[KernelSocket]] = {kernel_id: [] for kernel_id in kernels}
            for index in range(200):
                kernel_id = kernels[index % 2]
                socket = await stack.enter_async_context(
                    kernel_socket(server, kernel_id, v1=index % 4 < 2)
                )
                sockets[kernel_id].append(socket)
            status = httpx.get(server.url + "api/status", headers=AUTH).json()
            assert status["connections"] == 200
            # One TCP socket per WebSocket; ZeroMQ sockets are per kernel, made at its start.
            assert _open_fds(server.pid) - fds_before < 200 + 20

            async def hears(socket: KernelSocket, text: str) -> None:
                await socket.until(
                    lambda m: m.msg_type == "stream" and m.content["text"] == text, timeout=60
                )

            async with anyio.create_task_group() as group:
                for kernel_id, clients in sockets.items():
                    for socket in clients:
                        group.start_soon(hears, socket, f"hello from {kernel_id}\n")
                for kernel_id, clients in sockets.items():
                    code = f"print('hello from {kernel_id}')"
                    await clients[0].send("shell", "execute_request", execute_content(code))

            assert server.stop(signal.SIGTERM) == 0
        await _wait_gone(processes, timeout=1)  # stopped by the server, not by a watchdog
    assert "the server is stopping" in server.log()


def _stubborn_spec(jupyter_path: Path) -> None:
    """A kernel that does not watch its parent (no JPY_PARENT_PID): only the reaper stops it."""
    directory = jupyter_path / "kernels" / "stubborn"
    directory.mkdir(parents=True)
    spec = {
        "argv": [
            "env",
            "-u",
            "JPY_PARENT_PID",
            sys.executable,
            "-m",
            "ipykernel_launcher",
            "-f",
            "{connection_file}",
        ],
        "display_name": "Stubborn",
        "language": "python",
    }
    (directory / "kernel.json").write_text(json.dumps(spec))


async def test_sigkill_of_the_server_leaves_no_kernel_running(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _stubborn_spec(tmp_path / "share")
    monkeypatch.setenv("JUPYTER_PATH", str(tmp_path / "share"))
    with kernels_server(tmp_path) as server:
        plain = start_kernel(server)
        stubborn = start_kernel(server, name="stubborn")
        async with kernel_socket(server, stubborn) as socket:
            started = await socket.execute(
                "import subprocess; print(subprocess.Popen(['sleep', '600']).pid)"
            )
        grandchild = psutil.Process(int(started.text()))
        kernels = [*_kernel_processes(server, plain), *_kernel_processes(server, stubborn)]
        reapers = [
            child
            for child in psutil.Process(server.pid).children()
            if any(part.endswith("reaper.py") for part in child.cmdline())
        ]
        assert len(kernels) == 2
        assert len(reapers) == 1
        server.stop(signal.SIGKILL)
        await _wait_gone([*kernels, grandchild, *reapers], timeout=10)
