"""Multi-user rooms open files with the reach of the people in them, not the first joiner's.

A room loads, polls and saves its file from its own tasks. Ana shares a folder with Bob;
a file there is a link to her own file. When Bob (or an administrator) opens the room and
Ana joins, then re-points the link at Bob's secret, the room must not read Bob's file into
Ana's document nor write her edits into it. A read-only sharer who joins first must not stop
the owner's edits being saved, and the final save after everyone left is made with the
reach of whoever wrote last.

A real uvicorn server on loopback in multi-user mode (SQLite: the rooms' judging does not
touch the database), real WebSockets, a real link re-pointed on disk.
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote

import anyio
import httpx
import pytest
import websockets
from pycrdt import Doc, Text
from websockets.asyncio.client import ClientConnection

from junction.plugins.collaboration.protocol import (
    SYNC,
    SYNC_STEP1,
    SYNC_STEP2,
    SYNC_UPDATE,
    Reader,
    sync_message,
)
from junction.testing import TEST_TOKEN, serve_in_thread

pytestmark = pytest.mark.anyio

DEADLINE = 20.0
ADMIN = {"Authorization": f"token {TEST_TOKEN}"}
SECRET = "BOBSECRET\n"
OWN = "ANA-OWN\n"


@dataclass
class Server:
    """A multi-user server with users Ana and Bob (their homes made)."""

    url: str
    root: Path
    headers: dict[str, dict[str, str]]

    def home(self, name: str) -> Path:
        return self.root / "home" / name


def _start(tmp: Path, collaboration: dict[str, Any]) -> Iterator[Server]:
    root = tmp / "root"
    root.mkdir()
    with serve_in_thread(
        root_dir=root,
        enable=["contents", "collaboration", "users"],
        database_url=f"sqlite+aiosqlite:///{tmp / 'junction.db'}",
        plugin_settings={"collaboration": collaboration},
    ) as (url, _):
        headers = {"admin": ADMIN}
        with httpx.Client(base_url=url, headers=ADMIN, timeout=60) as admin:
            for name in ("ana", "bob"):
                created = admin.post("/api/users", json={"name": name})
                assert created.status_code == 201, created.text
                token = admin.post(f"/api/users/{name}/tokens").json()["token"]
                headers[name] = {"Authorization": f"token {token}"}
                home = admin.get("/api/contents/home", headers=headers[name])  # makes the home
                assert home.status_code == 200, home.text
        yield Server(url, root, headers)


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """Rooms that poll and save within a fraction of a second."""
    settings = {"file_poll_interval": 0.1, "document_save_delay": 0.1}
    yield from _start(tmp_path_factory.mktemp("rooms"), settings)


def point(link: Path, target: str) -> None:
    """Make ``link`` a link to ``target`` in one step (``rename`` over the old one)."""
    fresh = link.with_name(link.name + "~new")
    fresh.symlink_to(target)
    os.replace(fresh, link)


class Peer:
    """One user's WebSocket in a room, with its copy of the text document."""

    def __init__(self, ws: ClientConnection) -> None:
        self.ws = ws
        self.doc: Doc[Any] = Doc()
        self.close_code: int | None = None
        self.frames: list[bytes] = []
        """Every frame the room sent, as it came."""

    def text(self) -> str:
        return str(self.doc.get("source", type=Text))

    async def pump(self) -> None:
        """Apply what the room sends until the connection closes."""
        try:
            async for frame in self.ws:
                assert isinstance(frame, bytes)
                self.frames.append(frame)
                reader = Reader(frame)
                if reader.uint() != SYNC:
                    continue
                if reader.uint() in (SYNC_STEP2, SYNC_UPDATE):
                    self.doc.apply_update(reader.bytes())
        except websockets.ConnectionClosed:
            pass
        self.close_code = self.ws.close_code

    async def edit(self, words: str) -> None:
        """Append ``words`` to the text and send the change to the room."""
        updates: list[bytes] = []
        subscription = self.doc.observe(lambda event: updates.append(event.update))
        text = self.doc.get("source", type=Text)
        text += words
        self.doc.unobserve(subscription)
        for update in updates:
            await self.ws.send(sync_message(SYNC_UPDATE, update))


async def wait_until(condition: Callable[[], bool]) -> None:
    """Poll ``condition`` until it is true, failing after the deadline."""
    with anyio.fail_after(DEADLINE):
        while not condition():
            await anyio.sleep(0.02)


@asynccontextmanager
async def joined(
    server: Server, who: str, room: str, *, refused: bool | None = False
) -> AsyncIterator[Peer]:
    """``who`` in ``room`` until the block ends; the room's content has arrived (or, with
    ``refused``, the room closed the connection; with None, either)."""
    url = f"{server.url.replace('http', 'ws', 1)}api/collaboration/room/{room}"
    async with (
        websockets.connect(url, additional_headers=server.headers[who]) as ws,
        anyio.create_task_group() as group,
    ):
        peer = Peer(ws)
        group.start_soon(peer.pump)
        await ws.send(sync_message(SYNC_STEP1, peer.doc.get_state()))
        await wait_until(lambda: peer.text() != "" or peer.close_code is not None)
        if refused:
            await wait_until(lambda: peer.close_code is not None)
        elif refused is None:
            pass
        else:
            assert peer.close_code is None, f"{who} was refused the room: {peer.close_code}"
        try:
            yield peer
        finally:
            await ws.close()


async def shared_doc(
    server: Server, name: str, access: str, opener: str, target: str = "own.txt"
) -> tuple[Path, str]:
    """Ana's folder ``name`` shared with Bob for ``access``; its ``doc.txt`` a link to
    ``target`` (her ``own.txt``); the room of ``doc.txt`` as ``opener`` opened it."""
    folder = server.home("ana") / name
    folder.mkdir()
    (folder / "own.txt").write_text(OWN)
    point(folder / "doc.txt", target)
    async with httpx.AsyncClient(base_url=server.url, timeout=60) as http:
        shared = await http.put(
            "/api/users/shares",
            headers=server.headers["ana"],
            json={"path": f"home/ana/{name}", "user": "bob", "access": access},
        )
        assert shared.status_code == 200, shared.text
        opened = await http.put(
            f"/api/collaboration/session/{quote(f'home/ana/{name}/doc.txt')}",
            headers=server.headers[opener],
            json={"format": "text", "type": "file"},
        )
        assert opened.status_code in (200, 201), opened.text
    return folder, f"text:file:{opened.json()['fileId']}"


def files_holding(folder: Path, words: str) -> list[Path]:
    """The files under ``folder`` (links not followed) that contain ``words``."""
    found = []
    for path in folder.rglob("*"):
        if path.is_file() and not path.is_symlink() and words in path.read_text(errors="ignore"):
            found.append(path)
    return found


@pytest.mark.parametrize("first", ["bob", "admin"])
async def test_a_link_re_pointed_in_a_room_reaches_nothing_of_another_user(
    server: Server, first: str
) -> None:
    secret = server.home("bob") / "secret.txt"
    secret.write_text(SECRET)
    os.utime(secret, (1_000_000_000, 1_000_000_000))  # never the link target's mtime
    folder, room = await shared_doc(server, f"leak_{first}", "write", first)
    async with joined(server, first, room) as opener, joined(server, "ana", room) as ana:
        assert OWN in ana.text()
        assert OWN in opener.text()
        point(folder / "doc.txt", "../../bob/secret.txt")
        await ana.edit("ANA-EDIT\n")
        # The room reads the file again (its poll, or before saving): without judging by
        # Ana's reach, Bob's secret comes into her document and her edit goes into his file.
        await wait_until(
            lambda: (
                ana.close_code is not None
                or "BOBSECRET" in ana.text()
                or secret.read_text() != SECRET
            )
        )
        assert "BOBSECRET" not in ana.text()
        assert secret.read_text() == SECRET
        assert ana.close_code == 4404  # as for a file deleted: out of reach of someone in it
    assert files_holding(server.home("ana"), "BOBSECRET") == []


async def test_a_read_only_sharer_joining_first_does_not_stop_the_owners_saves(
    server: Server,
) -> None:
    folder, room = await shared_doc(server, "read_only", "read", "bob")
    async with joined(server, "bob", room) as bob, joined(server, "ana", room) as ana:
        await ana.edit("ANA-EDIT\n")
        await wait_until(lambda: "ANA-EDIT" in (folder / "own.txt").read_text())
        await wait_until(lambda: "ANA-EDIT" in bob.text())
        assert bob.close_code is None
        assert ana.close_code is None


async def test_a_shared_room_loads_and_saves_for_both(server: Server) -> None:
    folder, room = await shared_doc(server, "both", "write", "ana")
    async with joined(server, "ana", room) as ana, joined(server, "bob", room) as bob:
        assert bob.text() == OWN
        await bob.edit("BOB-EDIT\n")
        await wait_until(lambda: "BOB-EDIT" in (folder / "own.txt").read_text())
        await wait_until(lambda: ana.text() == OWN + "BOB-EDIT\n")
        assert ana.close_code is None
        assert bob.close_code is None


@pytest.fixture(scope="module")
def still(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """Rooms that neither poll nor save until they close, at once after the last client
    left: what a room holds stays as it is while a test looks."""
    settings = {"file_poll_interval": 600, "document_save_delay": 600, "document_cleanup_delay": 0}
    yield from _start(tmp_path_factory.mktemp("still"), settings)


async def test_a_joiner_must_reach_the_file_the_room_read(still: Server) -> None:
    server = still
    secret = server.home("bob") / "secret.txt"
    secret.write_text(SECRET)
    # Bob opens a document of Ana's folder that leads to his own secret (her link).
    folder, room = await shared_doc(server, "pinned", "write", "bob", "../../bob/secret.txt")
    async with joined(server, "bob", room) as bob:
        assert bob.text() == SECRET
        point(folder / "doc.txt", "own.txt")  # Ana re-points it before she joins
        async with joined(server, "ana", room, refused=True) as ana:
            assert ana.close_code == 4404
            assert "BOBSECRET" not in ana.text()
        assert bob.close_code is None


async def test_the_final_save_uses_the_reach_of_the_last_writer(still: Server) -> None:
    server = still
    folder, room = await shared_doc(server, "last", "read", "ana")
    async with joined(server, "bob", room) as bob, joined(server, "ana", room) as ana:
        await ana.edit("ANA-EDIT\n")
        await wait_until(lambda: "ANA-EDIT" in bob.text())
        assert "ANA-EDIT" not in (folder / "own.txt").read_text()  # saved at close only
    # Ana left, then Bob (read-only): the room saves her edit as she may.
    await wait_until(lambda: "ANA-EDIT" in (folder / "own.txt").read_text())


async def test_a_room_follows_a_rename_through_junction(server: Server) -> None:
    folder = server.home("ana") / "moving"
    folder.mkdir()
    (folder / "a.txt").write_text(OWN)
    async with httpx.AsyncClient(base_url=server.url, timeout=60) as http:
        opened = await http.put(
            "/api/collaboration/session/home/ana/moving/a.txt",
            headers=server.headers["ana"],
            json={"format": "text", "type": "file"},
        )
        assert opened.status_code == 201, opened.text
        room = f"text:file:{opened.json()['fileId']}"
        async with joined(server, "ana", room) as ana:
            renamed = await http.patch(
                "/api/contents/home/ana/moving/a.txt",
                headers=server.headers["ana"],
                json={"path": "home/ana/moving/b.txt"},
            )
            assert renamed.status_code == 200, renamed.text
            await ana.edit("ANA-EDIT\n")
            await wait_until(
                lambda: (folder / "b.txt").exists() and "ANA-EDIT" in (folder / "b.txt").read_text()
            )
            assert ana.close_code is None


async def test_a_rooms_history_of_another_file_never_reaches_the_next_opener(
    still: Server,
) -> None:
    server = still
    secret = server.home("bob") / "secret.txt"
    secret.write_text(SECRET)
    # Bob opens a document of Ana's folder that leads to his own secret, then leaves: the
    # room's history, stored, holds his secret.
    folder, room = await shared_doc(server, "history", "read", "bob", "../../bob/secret.txt")
    async with joined(server, "bob", room) as bob:
        assert bob.text() == SECRET
    (folder / "doc.txt").unlink()
    (folder / "doc.txt").write_text(OWN)  # a file of Ana's own at the same path
    with anyio.fail_after(DEADLINE):
        while True:  # until the room Bob left has closed (a joiner is refused until then)
            async with joined(server, "ana", room, refused=None) as ana:
                if ana.close_code is None:
                    assert ana.text() == OWN
                    assert not any(b"BOBSECRET" in frame for frame in ana.frames)
                    break
            await anyio.sleep(0.05)
    assert secret.read_text() == SECRET


async def test_a_room_reached_through_a_link_closes_when_its_folder_is_renamed(
    server: Server,
) -> None:
    _, room = await shared_doc(server, "linkmove", "write", "ana")
    async with joined(server, "ana", room) as ana, httpx.AsyncClient(timeout=60) as http:
        renamed = await http.patch(
            f"{server.url}api/contents/home/ana/linkmove",
            headers=server.headers["ana"],
            json={"path": "home/ana/linkmoved"},
        )
        assert renamed.status_code == 200, renamed.text
        await wait_until(lambda: ana.close_code is not None)
        assert ana.close_code == 4404
