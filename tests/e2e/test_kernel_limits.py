"""Bounded memory for slow and absent clients, without silent loss, on a real server."""

from __future__ import annotations

import re
import socket
import textwrap
import uuid
from pathlib import Path

import pytest
import websockets
from test_kernel_websocket import (
    AUTH,
    V1,
    KernelSocket,
    Msg,
    decode,
    execute_content,
    kernel_socket,
    kernels_server,
    start_kernel,
    wait_model,
    ws_url,
)
from websockets.asyncio.client import ClientConnection

pytestmark = [pytest.mark.e2e, pytest.mark.anyio]

CHUNKS = 256
CHUNK = 64 * 1024


def _chunks(messages: list[Msg]) -> list[int]:
    """Indices of the printed chunks, however the kernel split its output into messages."""
    text = "".join(
        m.content["text"]
        for m in messages
        if m.msg_type == "stream" and m.content["name"] == "stdout"
    )
    return [int(index) for index in re.findall(r"(\d{5})x", text)]


async def _read_into(received: list[Msg], ws: ClientConnection) -> None:
    while True:
        received.append(decode(await ws.recv(), v1=True))


async def test_slow_client_is_closed_with_1013_and_resumes_from_a_bounded_buffer(
    tmp_path: Path,
) -> None:
    with kernels_server(
        tmp_path, "kernels.client_queue_bytes=262144", "kernels.replay_buffer_bytes=1048576"
    ) as server:
        kernel_id = start_kernel(server)
        session_id = uuid.uuid4().hex
        host, port = server.url.removeprefix("http://").strip("/").split(":")
        raw = socket.socket()
        raw.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)  # a client that reads slowly
        raw.connect((host, int(port)))
        raw.setblocking(False)
        code = textwrap.dedent(
            f"""
            for i in range({CHUNKS}):
                print(f"{{i:05d}}" + "x" * {CHUNK}, flush=True)
            """
        )
        async with websockets.connect(
            ws_url(server, kernel_id, session_id),
            sock=raw,
            additional_headers=AUTH,
            subprotocols=[websockets.Subprotocol(V1)],
            max_size=None,
            max_queue=1,
        ) as ws:
            slow = KernelSocket(ws, v1=True, session_id=session_id)
            msg_id = await slow.send("shell", "execute_request", execute_content(code))
            # The server gives up on the client while the kernel keeps printing ...
            await wait_model(server, kernel_id, lambda m: m["connections"] == 0, timeout=60)
            await wait_model(server, kernel_id, lambda m: m["execution_state"] == "idle", 60)
            # ... and says why, after what it had already sent.
            received: list[Msg] = []
            with pytest.raises(websockets.ConnectionClosedError) as closed:
                await _read_into(received, ws)
        assert closed.value.rcvd is not None
        assert closed.value.rcvd.code == 1013
        assert "client too slow" in closed.value.rcvd.reason

        async with kernel_socket(server, kernel_id, session_id=session_id) as back:
            replay = await back.collect(msg_id)
        notice = replay.iopub[0]
        assert notice.msg_type == "stream"
        assert notice.content["name"] == "stderr"
        found = re.search(
            r"(\d+) kernel messages for this client were dropped", notice.content["text"]
        )
        assert found is not None
        dropped = int(found.group(1))
        before, after = _chunks(received), _chunks(replay.iopub)
        assert before == list(range(len(before)))  # in order, from the start
        assert after == list(range(CHUNKS - len(after), CHUNKS))  # in order, to the end
        assert len(before) + len(after) < CHUNKS  # the gap the notice tells of
        assert dropped >= 1
        replayed_bytes = sum(len(m.content["text"]) for m in replay.of_type("stream")[1:])
        assert replayed_bytes <= 1048576
        assert replay.reply.content["status"] == "ok"
