"""Client slots: bounded outboxes, replay after a drop, re-sending what may have been lost."""

from __future__ import annotations

import itertools
from collections.abc import Iterable
from dataclasses import dataclass, field

import orjson
import pytest

from junction.plugins.kernels.slots import SLOW_CLIENT, ClientSlot, SlotLimits
from junction.plugins.kernels.wire import Message, make_message

pytestmark = pytest.mark.anyio


@dataclass
class Owner:
    """A connection stand-in that records close requests."""

    closes: list[tuple[int, str]] = field(default_factory=list)
    takes: int = 0
    writes: list[list[Message]] = field(default_factory=list)

    def close_soon(self, code: int, reason: str, *, unclean: bool = False) -> None:
        self.closes.append((code, reason))

    async def wait_stopped(self) -> None:
        return None

    def write_now(self, messages: Iterable[Message]) -> int:
        """Take up to ``takes`` messages in one write (0: cannot write synchronously)."""
        batch = list(itertools.islice(messages, self.takes))
        if batch:
            self.writes.append(batch)
        return len(batch)


def _stream(index: int, size: int = 1000) -> Message:
    return make_message(
        "iopub", "stream", {"name": "stdout", "text": f"{index:04d}" + "x" * size}, session="k"
    )


def _text(message: Message) -> str:
    return str(message.content().get("text", ""))


def _slot(queue: int = 1 << 20, replay: int = 1 << 20) -> ClientSlot:
    return ClientSlot("s", SlotLimits(client_queue_bytes=queue, replay_buffer_bytes=replay))


async def test_detached_slot_keeps_the_newest_messages_and_says_how_many_it_dropped() -> None:
    slot = _slot(replay=5000)
    for index in range(10):
        slot.push(_stream(index))
    assert slot.outbox_bytes <= 5000
    kept = [_text(m)[:4] for m in slot.outbox]
    assert kept == [f"{i:04d}" for i in range(10 - len(kept), 10)]
    owner = Owner()
    slot.attach(owner, "kernel-session")
    notice = slot.outbox[0]
    assert notice.header["session"] == "kernel-session"
    assert _text(notice).startswith(f"[junction] {10 - len(kept)} kernel messages")
    assert slot.dropped == 0


async def test_trimming_keeps_replies_and_statuses_that_overtook_outputs() -> None:
    slot = _slot(replay=5000)
    reply = make_message("shell", "execute_reply", {"status": "ok"}, session="k")
    idle = make_message("iopub", "status", {"execution_state": "idle"}, session="k")
    slot.push(_stream(0))
    slot.push(reply)
    for index in range(1, 10):
        slot.push(_stream(index))
    slot.push(idle)
    assert reply in slot.outbox
    assert slot.outbox[-1] is idle
    assert slot.outbox_bytes <= 5000


async def test_attached_slot_closes_a_client_that_falls_too_far_behind() -> None:
    slot = _slot(queue=3000)
    owner = Owner()
    slot.attach(owner, "k")
    for index in range(5):
        slot.push(_stream(index))
    assert owner.closes == [(SLOW_CLIENT, owner.closes[0][1])]
    assert "client too slow" in owner.closes[0][1]
    assert len(slot.outbox) == 5  # nothing is dropped while attached


async def test_one_huge_message_alone_does_not_count_as_falling_behind() -> None:
    slot = _slot(queue=3000)
    owner = Owner()
    slot.attach(owner, "k")
    slot.push(_stream(0, size=100_000))
    assert owner.closes == []


async def test_writer_takes_messages_in_order_and_only_its_own() -> None:
    slot = _slot()
    owner, other = Owner(), Owner()
    slot.attach(owner, "k")
    first, second = _stream(1), _stream(2)
    slot.push(first)
    slot.push(second)
    assert await slot.wait_message(owner) is first
    assert await slot.wait_message(other) is None
    slot.sent(second)  # not the head: ignored
    slot.sent(first)
    assert await slot.wait_message(owner) is second


async def test_unclean_reconnect_resends_recent_statuses_and_replies_but_not_outputs() -> None:
    slot = _slot()
    owner = Owner()
    slot.attach(owner, "k")
    busy = make_message("iopub", "status", {"execution_state": "busy"}, session="k")
    output = _stream(1)
    reply = make_message("shell", "execute_reply", {"status": "ok"}, session="k")
    request = make_message("stdin", "input_request", {"prompt": "?"}, session="k")
    asked = make_message("stdin", "input_request", {"prompt": "again?"}, session="k")
    for message in (busy, output, reply, request, asked):
        slot.push(message)
        slot.sent(message)
    slot.answered(request.msg_id)
    slot.detach(owner, unclean=True)
    later = _stream(2)
    slot.push(later)
    slot.attach(Owner(), "k")
    assert list(slot.outbox) == [busy, reply, asked, later]


async def test_clean_reconnect_resends_nothing() -> None:
    slot = _slot()
    owner = Owner()
    slot.attach(owner, "k")
    reply = make_message("shell", "execute_reply", {"status": "ok"}, session="k")
    slot.push(reply)
    slot.sent(reply)
    slot.detach(owner, unclean=False)
    slot.attach(Owner(), "k")
    assert list(slot.outbox) == []


async def test_a_replay_larger_than_the_queue_limit_drains_without_closing_the_client() -> None:
    slot = _slot(queue=3000, replay=100_000)
    for index in range(20):
        slot.push(_stream(index))
    owner = Owner()
    slot.attach(owner, "k")
    slot.push(_stream(20))
    assert owner.closes == []
    while (message := await slot.wait_message(owner)) is not None and len(slot.outbox) > 1:
        slot.sent(message)
    for index in range(21, 26):
        slot.push(_stream(index))
    assert [code for code, _ in owner.closes] == [SLOW_CLIENT]


def _output_of(request: str, session: str, index: int) -> Message:
    parent = orjson.dumps({"msg_id": request, "msg_type": "execute_request", "session": session})
    return make_message(
        "iopub", "stream", {"name": "stdout", "text": f"{index}"}, session="k", parent=parent
    )


async def test_a_detached_slot_keeps_the_output_of_code_its_client_ran_here() -> None:
    slot = _slot()
    owner = Owner()
    slot.attach(owner, "k")
    slot.executed("run-here")
    slot.detach(owner, unclean=False)
    slot.push(_output_of("run-here", "s", 1))
    slot.push(_output_of("someone-else", "other-client", 2))  # another client's code
    assert [_text(m) for m in slot.outbox] == ["1", "2"]
    slot.attach(Owner(), "k")
    assert [_text(m) for m in slot.outbox] == ["1", "2"]


async def test_a_detached_slot_whose_client_ran_code_elsewhere_replays_nothing() -> None:
    """Behind several servers: the client came back through another server, which delivers
    the kernel's output itself; replaying it here too would show every output twice."""
    slot = _slot()
    owner = Owner()
    slot.attach(owner, "k")
    slot.executed("run-here")
    slot.detach(owner, unclean=True)
    slot.push(_output_of("run-here", "s", 1))
    slot.push(_output_of("run-elsewhere", "s", 2))
    slot.push(_output_of("run-here", "s", 3))
    slot.push(_stream(4))
    assert list(slot.outbox) == []
    slot.attach(Owner(), "k")
    assert list(slot.outbox) == []
    slot.push(_output_of("run-elsewhere", "s", 5))  # attached again: everything goes out
    assert [_text(m) for m in slot.outbox] == ["5"]


async def test_a_slot_remembers_a_bounded_number_of_executes() -> None:
    slot = _slot()  # a new slot waits detached for its first connection
    for index in range(5000):
        slot.executed(f"run-{index}")
    slot.push(_output_of("run-4999", "s", 1))
    assert len(slot.outbox) == 1
    slot.push(_output_of("run-0", "s", 2))  # forgotten long ago: judged as run elsewhere
    assert list(slot.outbox) == []


async def test_a_batch_goes_to_the_connection_in_one_write_without_waking_the_writer() -> None:
    slot = _slot()
    owner = Owner(takes=100)
    slot.attach(owner, "k")
    slot._wakeup.clear()  # the writer took attach's wakeup
    messages = [_stream(index) for index in range(5)]
    for message in messages:
        slot.push(message, batched=True)
    assert not slot._wakeup.is_set()  # the writer task stays asleep
    assert owner.writes == []
    slot.flush()
    assert owner.writes == [messages]
    assert not slot.outbox
    assert slot.outbox_bytes == 0
    assert not slot._wakeup.is_set()
    slot.flush()  # nothing new: no second write
    assert len(owner.writes) == 1


async def test_what_the_connection_cannot_take_now_is_left_to_its_writer_in_order() -> None:
    slot = _slot()
    owner = Owner(takes=2)
    slot.attach(owner, "k")
    slot._wakeup.clear()
    messages = [_stream(index) for index in range(5)]
    for message in messages:
        slot.push(message, batched=True)
    slot.flush()
    assert owner.writes == [messages[:2]]
    assert list(slot.outbox) == messages[2:]
    assert slot._wakeup.is_set()
    assert await slot.wait_message(owner) is messages[2]


async def test_a_detached_slot_keeps_batched_messages_for_replay() -> None:
    slot = _slot()
    messages = [_stream(index) for index in range(3)]
    for message in messages:
        slot.push(message, batched=True)
    slot.flush()
    assert list(slot.outbox) == messages
    owner = Owner(takes=100)
    slot.attach(owner, "k")
    assert await slot.wait_message(owner) is messages[0]
