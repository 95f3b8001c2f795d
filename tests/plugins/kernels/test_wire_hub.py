"""The hub's reading loop against real ZeroMQ peer sockets standing in for a kernel.

Bursts longer than one drain, forged messages, buffers and replies arriving while the loop
writes must all come out right; a kernel process is not needed for that.
"""

from __future__ import annotations

import json
import time
from collections.abc import AsyncIterator, Iterable
from dataclasses import dataclass, field

import anyio
import pytest
import zmq
import zmq.asyncio

from junction.plugins.kernels.hub import KernelHub
from junction.plugins.kernels.slots import ClientSlot, SlotLimits
from junction.plugins.kernels.wire import DELIMITER, Message, Signer, make_message

pytestmark = pytest.mark.anyio

KEY = b"a-test-key"
CHANNELS = ("shell", "control", "stdin", "iopub")


@dataclass
class Owner:
    """A connection stand-in that records close requests."""

    closes: list[tuple[int, str]] = field(default_factory=list)

    def close_soon(self, code: int, reason: str, *, unclean: bool = False) -> None:
        self.closes.append((code, reason))

    async def wait_stopped(self) -> None:
        return None

    def write_now(self, messages: Iterable[Message]) -> int:
        return 0


@dataclass
class FakeKernel:
    """The kernel's side of the four channels, bound to random loopback ports."""

    sockets: dict[str, zmq.Socket[bytes]]
    info: dict[str, object]
    signer: Signer

    def publish(self, msg_type: str, content: dict[str, object], *extra: bytes) -> None:
        """Send one iopub message, signed with the kernel's key."""
        message = make_message("iopub", msg_type, content, session="kernel-session")
        parts = [bytes(part) for part in message.parts] + list(extra)
        self.sockets["iopub"].send_multipart([DELIMITER, self.signer.sign(parts), *parts])

    def forge(self) -> None:
        """Send one iopub message with a wrong signature."""
        message = make_message("iopub", "stream", {"text": "forged"}, session="kernel-session")
        parts = [bytes(part) for part in message.parts]
        self.sockets["iopub"].send_multipart([DELIMITER, b"0" * 64, *parts])


@pytest.fixture
async def kernel() -> AsyncIterator[FakeKernel]:
    context: zmq.Context[zmq.Socket[bytes]] = zmq.Context()
    kinds = {"shell": zmq.ROUTER, "control": zmq.ROUTER, "stdin": zmq.ROUTER, "iopub": zmq.PUB}
    sockets = {channel: context.socket(kind) for channel, kind in kinds.items()}
    info: dict[str, object] = {"ip": "127.0.0.1", "transport": "tcp", "key": KEY.decode()}
    for channel, sock in sockets.items():
        sock.setsockopt(zmq.LINGER, 0)
        sock.setsockopt(zmq.SNDHWM, 0)
        info[f"{channel}_port"] = sock.bind_to_random_port("tcp://127.0.0.1")
    try:
        yield FakeKernel(sockets, info, Signer(KEY))
    finally:
        for sock in sockets.values():
            sock.close(linger=0)
        context.term()


async def _connected(
    kernel: FakeKernel, group: anyio.abc.TaskGroup
) -> tuple[KernelHub, ClientSlot]:
    hub = KernelHub("k1", zmq.asyncio.Context.instance(), SlotLimits(1 << 30, 1 << 30))
    await hub.connect(kernel.info, group)
    slot = hub.slot("client")
    hub.attach(slot, Owner())
    slot.outbox.clear()  # the attach-time status
    slot.outbox_bytes = 0
    # A SUB socket takes a moment to subscribe: publish until one message gets through.
    with anyio.fail_after(10):
        while not slot.outbox:
            kernel.publish("status", {"execution_state": "idle"})
            await anyio.sleep(0.02)
    await anyio.sleep(0.05)
    slot.outbox.clear()
    slot.outbox_bytes = 0
    return hub, slot


async def _wait_for(slot: ClientSlot, count: int) -> None:
    with anyio.fail_after(20):
        while len(slot.outbox) < count:
            await anyio.sleep(0.01)


async def test_a_burst_longer_than_one_drain_arrives_whole_and_in_order(
    kernel: FakeKernel,
) -> None:
    async with anyio.create_task_group() as group:
        hub, slot = await _connected(kernel, group)
        count = 2000  # several drains of at most 256 messages each
        for index in range(count):
            kernel.publish("stream", {"name": "stdout", "text": f"{index}\n"})
        await _wait_for(slot, count)
        texts = [message.content()["text"] for message in slot.outbox]
        assert texts == [f"{index}\n" for index in range(count)]
        assert hub.last_activity > 0
        await hub.disconnect()
        group.cancel_scope.cancel()


@dataclass
class Writer(Owner):
    """A connection stand-in that takes every batch the hub hands it in one write."""

    writes: list[list[Message]] = field(default_factory=list)

    def write_now(self, messages: Iterable[Message]) -> int:
        batch = list(messages)
        self.writes.append(batch)
        return len(batch)


async def test_a_streaming_kernel_is_read_in_batches_that_go_out_in_one_write_each(
    kernel: FakeKernel,
) -> None:
    async with anyio.create_task_group() as group:
        hub, slot = await _connected(kernel, group)
        writer = Writer()
        hub.attach(slot, writer)  # takes the slot over from the recording owner
        slot.outbox.clear()  # the attach-time status
        slot.outbox_bytes = 0
        count = 300
        for index in range(count):  # a print every 0.2 ms or so, like a kernel's print loop
            kernel.publish("stream", {"name": "stdout", "text": f"{index}\n"})
            time.sleep(0.0002)  # the message reaches the hub's socket meanwhile
            await anyio.sleep(0)  # one event-loop iteration: the hub may read it
        kernel.publish("status", {"execution_state": "idle"})
        with anyio.fail_after(20):
            while sum(map(len, writer.writes)) < count + 1:
                await anyio.sleep(0.01)
        delivered = [message for batch in writer.writes for message in batch]
        assert [message.content().get("text") for message in delivered[:count]] == [
            f"{index}\n" for index in range(count)
        ]
        assert delivered[-1].msg_type == "status"
        assert len(writer.writes) < count // 2  # paced: several prints per read and write
        assert not slot.outbox
        await hub.disconnect()
        group.cancel_scope.cancel()


async def test_forged_messages_are_dropped_and_buffers_kept_byte_for_byte(
    kernel: FakeKernel,
) -> None:
    async with anyio.create_task_group() as group:
        hub, slot = await _connected(kernel, group)
        kernel.forge()
        kernel.publish("display_data", {"data": {}}, b"\x00\x01binary", b"")
        kernel.publish("stream", {"name": "stdout", "text": "after\n"})
        await _wait_for(slot, 2)
        first, second = list(slot.outbox)[:2]
        assert first.msg_type == "display_data"
        assert [bytes(part) for part in first.parts[4:]] == [b"\x00\x01binary", b""]
        assert second.content()["text"] == "after\n"
        assert all(message.content().get("text") != "forged" for message in slot.outbox)
        await hub.disconnect()
        group.cancel_scope.cancel()


async def test_replies_reach_the_requesting_client_while_iopub_streams(
    kernel: FakeKernel,
) -> None:
    async with anyio.create_task_group() as group:
        hub, slot = await _connected(kernel, group)
        request = make_message("shell", "execute_request", {"code": "1"}, session="client")
        await hub.send(slot, request)
        shell = kernel.sockets["shell"]
        with anyio.fail_after(10):
            while not shell.poll(0):
                await anyio.sleep(0.01)
        identity, *rest = shell.recv_multipart()
        parts = rest[rest.index(DELIMITER) + 2 :]
        assert json.loads(parts[0])["msg_id"] == request.msg_id
        for index in range(300):
            kernel.publish("stream", {"name": "stdout", "text": f"{index}\n"})
        reply = make_message(
            "shell", "execute_reply", {"status": "ok"}, session="k", parent=parts[0]
        )
        reply_parts = [bytes(part) for part in reply.parts]
        shell.send_multipart([identity, DELIMITER, kernel.signer.sign(reply_parts), *reply_parts])
        await _wait_for(slot, 301)
        replies = [message for message in slot.outbox if message.msg_type == "execute_reply"]
        assert len(replies) == 1
        assert replies[0].parent["msg_id"] == request.msg_id
        streams = [
            message.content()["text"] for message in slot.outbox if message.channel == "iopub"
        ]
        assert streams == [f"{index}\n" for index in range(300)]
        await hub.disconnect()
        group.cancel_scope.cancel()


async def test_the_hubs_own_requests_end_when_the_kernels_connection_closes(
    kernel: FakeKernel,
) -> None:
    """A server-side execution and a control call the kernel will not answer any more (the
    hub disconnects: a restart, the kernel's record gone) end with an error reply and None,
    instead of waiting forever (and keeping another server's kernel sockets in use)."""
    results: dict[str, object] = {}
    async with anyio.create_task_group() as group:
        hub, _slot = await _connected(kernel, group)

        async def execute() -> None:
            results["execute"] = await hub.execute("6 * 7", lambda _type, _content: None)

        async def call() -> None:
            results["call"] = await hub.call("control", "interrupt_request", {})

        group.start_soon(execute)
        group.start_soon(call)
        with anyio.fail_after(10):  # both requests reached the kernel, which stays silent
            while not all(kernel.sockets[name].poll(0) for name in ("shell", "control")):
                await anyio.sleep(0.01)
        await hub.disconnect()
        with anyio.fail_after(10):
            while len(results) < 2:
                await anyio.sleep(0.01)
        group.cancel_scope.cancel()
    execute_reply = results["execute"]
    assert isinstance(execute_reply, dict)
    assert execute_reply["status"] == "error"
    assert execute_reply["ename"] == "KernelDied"
    assert results["call"] is None
