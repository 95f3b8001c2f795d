"""Awareness in process: a connection owns the client ids it announced first, a few of them,
each of bounded size."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator

import pytest

from junction.plugins.collaboration.protocol import (
    AWARENESS,
    AwarenessEntry,
    Reader,
    awareness_message,
    parse_awareness,
)
from junction.plugins.collaboration.room import (
    MAX_AWARENESS_IDS,
    MAX_AWARENESS_STATE,
    Client,
    ClientClosed,
    Room,
)

pytestmark = pytest.mark.anyio


@pytest.fixture
def client() -> Iterator[Callable[..., Client]]:
    """Makes clients and closes both ends of their queues when the test ends."""
    made: list[Client] = []

    def make(*, read_only: bool = False) -> Client:
        made.append(Client(read_only=read_only))
        return made[-1]

    yield make
    for each in made:
        each.outbox.close()
        each.inbox.close()


def announce(*entries: tuple[int, int, str]) -> bytes:
    """An awareness frame from ``(client_id, clock, state)`` triples."""
    return awareness_message([AwarenessEntry(*entry) for entry in entries])


def received(client: Client) -> list[AwarenessEntry]:
    """Every awareness entry queued for ``client`` so far."""
    entries: list[AwarenessEntry] = []
    while True:
        try:
            frame = client.inbox.receive_nowait()
        except Exception:
            return entries
        reader = Reader(frame)
        if reader.uint() == AWARENESS:
            entries += parse_awareness(reader.bytes())


def state(name: str) -> str:
    """An awareness state naming a user."""
    return json.dumps({"user": {"name": name}})


async def test_a_connection_cannot_change_or_clear_another_ones_ids(
    client: Callable[..., Client],
) -> None:
    room = Room("r")
    ana, bob = client(), client(read_only=True)
    room.join(ana)
    room.join(bob)
    await room.handle(ana, announce((111, 1, state("Ana"))))
    received(ana), received(bob)
    await room.handle(bob, announce((111, 2, state("Ana (spoofed)"))))
    await room.handle(bob, announce((111, 3, "null")))
    assert room.awareness[111].state == state("Ana")
    assert received(ana) == []
    assert received(bob) == []
    await room.handle(bob, announce((222, 1, state("Bob"))))
    assert [e.client_id for e in received(ana)] == [222]
    await room.handle(ana, announce((111, 2, state("Ana again"))))
    assert room.awareness[111].state == state("Ana again")
    await room.handle(ana, announce((111, 1, state("stale clock"))))
    assert room.awareness[111].state == state("Ana again")
    await room.handle(ana, announce((111, 3, "null")))
    assert 111 not in room.awareness
    received(ana), received(bob)
    # once Ana let the id go, it is free again
    await room.handle(bob, announce((111, 4, state("Bob 2"))))
    assert room.awareness[111].state == state("Bob 2")
    received(ana)
    room.leave(bob)
    gone = received(ana)
    assert {e.client_id for e in gone} == {111, 222}
    assert all(e.state == "null" for e in gone)
    assert room.awareness == {}


async def test_entries_per_connection_are_capped(client: Callable[..., Client]) -> None:
    room = Room("r")
    flooder, other = client(), client()
    room.join(flooder)
    room.join(other)
    entries = [(i, 1, state(f"n{i}")) for i in range(1, 101)]
    await room.handle(flooder, announce(*entries))
    assert len(room.awareness) == MAX_AWARENESS_IDS
    await room.handle(other, announce((500, 1, state("other"))))
    assert 500 in room.awareness
    assert len(flooder.awareness_ids) == MAX_AWARENESS_IDS


async def test_a_huge_state_disconnects_its_sender_only(client: Callable[..., Client]) -> None:
    room = Room("r")
    sender, other = client(), client()
    room.join(sender)
    room.join(other)
    await room.handle(other, announce((7, 1, state("ok"))))
    received(other)
    big = json.dumps({"user": {"name": "x" * MAX_AWARENESS_STATE}})
    with pytest.raises(ClientClosed) as closed:
        await room.handle(sender, announce((8, 1, big)))
    assert closed.value.code == 1009
    assert 8 not in room.awareness
    assert received(other) == []
    await room.handle(other, announce((7, 2, state("still here"))))
    assert room.awareness[7].state == state("still here")
