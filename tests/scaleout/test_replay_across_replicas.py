"""A client that moves between replicas never gets a kernel's output twice.

Each replica keeps a replay buffer for a client that dropped (by its ``session_id``). When
the client comes back through another replica, that one delivers the kernel's output; the
first replica, seeing the output of code the client ran elsewhere, must not replay it when
the client comes back to it.
"""

from __future__ import annotations

import asyncio
import json
import uuid
from typing import Any

import pytest
import websockets

from .replicas import Replica, ReplicaSet

pytestmark = pytest.mark.e2e


def _execute(session: str, code: str) -> str:
    header = {
        "msg_id": uuid.uuid4().hex,
        "msg_type": "execute_request",
        "session": session,
        "username": "",
        "version": "5.3",
        "date": "2026-01-01T00:00:00Z",
    }
    content = {"code": code, "silent": False, "store_history": True, "user_expressions": {}}
    message = {"header": header, "parent_header": {}, "metadata": {}, "channel": "shell"}
    return json.dumps({**message, "content": {**content, "allow_stdin": False}, "buffers": []})


async def _run(url: str, headers: dict[str, str], session: str, code: str) -> list[str]:
    """Run ``code`` through a new WebSocket; every stream text it receives until the reply
    and the idle status of the cell. Leaves with 4000 (not a clean close): the replica keeps
    the client's replay buffer."""
    texts: list[str] = []
    async with websockets.connect(url, additional_headers=headers) as socket:
        request = _execute(session, code)
        msg_id = json.loads(request)["header"]["msg_id"]
        await socket.send(request)
        replied = idle = False
        async with asyncio.timeout(60):
            while not (replied and idle):
                message: dict[str, Any] = json.loads(await socket.recv())
                if message["msg_type"] == "stream":
                    texts.append(message["content"]["text"])
                if message["parent_header"].get("msg_id") != msg_id:
                    continue
                replied = replied or message["msg_type"] == "execute_reply"
                state = message["content"].get("execution_state")
                idle = idle or (message["msg_type"] == "status" and state == "idle")
        await socket.close(4000)
    return texts


def test_output_received_through_one_replica_is_not_replayed_by_another(
    replica_set: ReplicaSet,
) -> None:
    first, second = replica_set.replicas[:2]
    with replica_set.replica_client(first) as client:
        created = client.post("api/kernels", json={"name": "python3"})
        assert created.status_code == 201, created.text
    kernel_id = created.json()["id"]
    session = uuid.uuid4().hex
    headers = {"Authorization": f"token {replica_set.token}"}

    def url(replica: Replica) -> str:
        return f"ws://{replica.address}/api/kernels/{kernel_id}/channels?session_id={session}"

    async def scenario() -> tuple[list[str], list[str], list[str]]:
        on_first = await _run(url(first), headers, session, "print('on the first')")
        on_second = await _run(url(second), headers, session, "print('on the second')")
        back = await _run(url(first), headers, session, "print('back on the first')")
        return on_first, on_second, back

    try:
        on_first, on_second, back = asyncio.run(scenario())
    finally:
        with replica_set.replica_client(first) as client:
            client.delete(f"api/kernels/{kernel_id}")
    assert on_first == ["on the first\n"]
    assert on_second == ["on the second\n"]
    assert back == ["back on the first\n"]  # not "on the second" again
