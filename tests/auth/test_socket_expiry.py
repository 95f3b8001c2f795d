"""An open WebSocket does not outlive its credentials' end: an API token's expiry, or a
session's idle deadline, closes it with code 1008 ("credentials expired") shortly after that
end, while a WebSocket opened with a credential that has not ended stays open.

A real multi-user ``junction`` server (users, terminals) with real PTYs, driven over the wire
with the ``websockets`` client; then, in process, the ends the users plugin reports and a
session whose end moves.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import anyio
import httpx
import pytest
from starlette.types import Message, Receive, Scope, Send
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed

from junction.auth.identity import Authenticator, AuthMethod, User
from junction.auth.sockets import OpenSockets
from junction.database import Database, upgrade
from junction.plugins.users import plugin
from junction.plugins.users.directory import UserDirectory
from junction.plugins.users.settings import UsersSettings
from junction.testing import TEST_TOKEN, ServerProcess, make_settings, terminal_echo

pytestmark = pytest.mark.anyio

ADMIN = {"Authorization": f"token {TEST_TOKEN}"}
TOKEN_SECONDS = 4.0
"""Lifetime of the expiring token: long enough to open a terminal and echo through it."""
IDLE_HOURS = 0.0015
"""The server's ``users.session_idle_hours``: 5.4 seconds."""
LATE = 10.0
"""Seconds past a credential's end within which its WebSocket must be closed."""


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    """One multi-user server with terminals, whose sessions end after 5.4 idle seconds."""
    root = tmp_path_factory.mktemp("socket-expiry")
    args = ["--port", "0", "--ip", "127.0.0.1", "--profile", "none", "--enable", "users"]
    args += ["--enable", "terminals", "--root-dir", str(root)]
    args += ["--set", f"database_url=sqlite+aiosqlite:///{root}/junction.db"]
    args += ["--set", f"users.session_idle_hours={IDLE_HOURS}"]
    with ServerProcess(args, log_path=root / "server.log") as running:
        yield running


def new_user(server: ServerProcess) -> str:
    """A new account's name."""
    name = f"u{uuid.uuid4().hex[:8]}"
    created = httpx.post(f"{server.url}api/users", json={"name": name}, headers=ADMIN)
    assert created.status_code == 201, created.text
    return name


def issue_token(server: ServerProcess, name: str, **body: float) -> dict[str, str]:
    """Headers carrying a new API token of ``name`` (``expires_in`` seconds, if given)."""
    url = f"{server.url}api/users/{name}/tokens"
    issued = httpx.post(url, json=body, headers=ADMIN, timeout=30)
    assert issued.status_code == 201, issued.text
    assert (issued.json()["expires"] is None) == ("expires_in" not in body)
    return {"Authorization": f"token {issued.json()['token']}"}


def new_terminal(server: ServerProcess, headers: dict[str, str]) -> str:
    """Start a terminal as the holder of ``headers``; returns its websocket URL."""
    created = httpx.post(f"{server.url}api/terminals", headers=headers, timeout=30)
    assert created.status_code == 200, created.text
    return server.url.replace("http", "ws", 1) + f"terminals/websocket/{created.json()['name']}"


async def closed_by_server(ws: ClientConnection, within: float) -> tuple[int, str]:
    """Read ``ws`` until the server closes it: the close frame's code and reason. Fails
    after ``within`` seconds, or when the connection ends without a close frame."""

    async def read_until_closed() -> None:
        while True:
            await ws.recv()

    with anyio.fail_after(within), pytest.raises(ConnectionClosed) as closed:
        await read_until_closed()
    frame = closed.value.rcvd
    assert frame is not None, "closed without a close frame"
    return frame.code, frame.reason


def session_opened_with(server: ServerProcess, token: dict[str, str]) -> dict[str, str]:
    """The ``Cookie`` header of the browser session a page URL with ``token`` opens (the
    token exchange)."""
    secret = token["Authorization"].split()[1]
    login = httpx.get(server.url, params={"token": secret}, headers={"Accept": "text/html"})
    assert login.status_code == 302, login.text
    cookies = [
        f"{name}={value}" for name, value in login.cookies.items() if name.startswith("junction")
    ]
    assert len(cookies) == 1, login.headers
    return {"Cookie": cookies[0]}


async def test_an_expiring_token_closes_its_websocket_at_expiry(server: ServerProcess) -> None:
    ana = new_user(server)
    lasting = issue_token(server, ana)
    terminal = new_terminal(server, lasting)
    expiring = issue_token(server, ana, expires_in=TOKEN_SECONDS)
    ends = time.monotonic() + TOKEN_SECONDS
    async with (
        connect(terminal, additional_headers=expiring) as doomed,
        connect(terminal, additional_headers=lasting) as kept,
    ):
        await terminal_echo(doomed, "before-expiry")
        assert time.monotonic() < ends, "the machine is too slow for this token's lifetime"
        code, reason = await closed_by_server(doomed, ends - time.monotonic() + LATE)
        assert (code, reason) == (1008, "credentials expired")
        assert time.monotonic() >= ends - 1.0  # not closed long before the token's end
        await terminal_echo(kept, "after-expiry")  # the lasting token's socket stays open
    expired = httpx.get(f"{server.url}api/me", headers=expiring)
    assert expired.status_code in (401, 403)
    assert httpx.get(f"{server.url}api/me", headers=lasting).status_code == 200


async def test_an_idle_session_closes_its_websocket_at_its_idle_deadline(
    server: ServerProcess,
) -> None:
    bob = new_user(server)
    lasting = issue_token(server, bob)
    terminal = new_terminal(server, lasting)
    as_session = session_opened_with(server, lasting)
    async with connect(terminal, additional_headers=as_session) as tab:
        ends = time.monotonic() + IDLE_HOURS * 3600  # the handshake was the session's last use
        # Traffic on the socket is no use of the session: an open tab does not keep it alive.
        await terminal_echo(tab, "while-idle")
        code, reason = await closed_by_server(tab, ends - time.monotonic() + LATE)
        assert (code, reason) == (1008, "credentials expired")
        assert time.monotonic() >= ends - 1.0
    ended = httpx.get(f"{server.url}api/me", headers=as_session)
    assert ended.status_code in (401, 403)


async def test_a_session_opened_with_an_expiring_token_ends_with_the_token(
    server: ServerProcess,
) -> None:
    cleo = new_user(server)
    lasting = issue_token(server, cleo)
    terminal = new_terminal(server, lasting)
    expiring = issue_token(server, cleo, expires_in=TOKEN_SECONDS)
    ends = time.monotonic() + TOKEN_SECONDS
    as_session = session_opened_with(server, expiring)
    me = f"{server.url}api/me"
    assert httpx.get(me, headers=as_session).status_code == 200
    async with (
        httpx.AsyncClient(timeout=30) as client,
        connect(terminal, additional_headers=as_session) as tab,
    ):
        await terminal_echo(tab, "before-expiry")
        assert time.monotonic() < ends, "the machine is too slow for this token's lifetime"

        async def keep_using_the_session() -> None:
            # Uses well within the idle deadline: only the token's end may end the session.
            while time.monotonic() < ends + LATE:
                await client.get(me, headers=as_session)
                await anyio.sleep(0.5)

        async with anyio.create_task_group() as tasks:
            tasks.start_soon(keep_using_the_session)
            code, reason = await closed_by_server(tab, ends - time.monotonic() + LATE)
            tasks.cancel_scope.cancel()
        assert (code, reason) == (1008, "credentials expired")
        assert time.monotonic() >= ends - 1.0
    assert httpx.get(me, headers=expiring).status_code in (401, 403)
    assert httpx.get(me, headers=as_session).status_code in (401, 403)
    assert httpx.get(me, headers=lasting).status_code == 200


def test_the_server_wrote_no_traceback(server: ServerProcess) -> None:
    assert "Traceback" not in server.log(), server.log()


# -- in process: the ends the users plugin reports, and OpenSockets following them ---------


async def test_the_users_plugin_reports_when_a_token_or_a_session_ends(tmp_path: Path) -> None:
    database = Database(f"sqlite+aiosqlite:///{tmp_path}/users.db")
    assert plugin.tables is not None
    await upgrade(database, [("users", plugin.tables)])
    idle = 2 * 3600.0
    users = UserDirectory(database, UsersSettings(session_idle_hours=idle / 3600))
    try:
        ana = (await users.add_user("ana")).user()
        expires = datetime.now(UTC) + timedelta(hours=1)
        expiring, _ = await users.issue_token("ana", expires=expires)
        lasting, _ = await users.issue_token("ana")
        found = await users.user_for_token(expiring)
        assert found is not None
        assert found.expires == pytest.approx(expires.timestamp(), abs=1e-3)
        found = await users.user_for_token(lasting)
        assert found is not None
        assert found.expires is None
        session = await users.open_session(ana, agent="test", address="127.0.0.1")
        before = time.time()
        used = await users.user_for_session(session)
        after = time.time()
        assert used is not None
        assert used.expires is not None
        assert before + idle <= used.expires <= after + idle  # the idle end: sooner than 14 d
        checked = await users.user_for_session(session, touch=False)
        assert checked is not None
        assert checked.expires == used.expires  # a check of the server's own moves nothing
        assert checked == used  # the end is no part of who the user is
    finally:
        await database.close()


class SessionAuthenticator(Authenticator):
    """An authenticator whose one session ends ``moves`` times 0.2 s after each check (other
    requests used it meanwhile), then at its last end."""

    moves: int
    checks: list[bool]

    async def identify(
        self,
        *,
        query_token: str | None,
        header: str | None,
        cookie: str | None,
        touch: bool = True,
    ) -> tuple[User | None, AuthMethod | None]:
        """The session's user carrying its end while it has moves left; None after."""
        self.checks.append(touch)
        if cookie != "session" or self.moves <= 0:
            return None, None
        self.moves -= 1
        return User.named("ana", expires=time.time() + 0.2), "cookie"


async def test_a_socket_follows_its_session_end_when_other_requests_move_it() -> None:
    auth = SessionAuthenticator(make_settings(token=TEST_TOKEN), cookie_secret=b"s" * 32)
    auth.checks = []
    auth.moves = 2  # the handshake's identification, then the first check
    sockets = OpenSockets(auth)
    sent: list[Message] = []
    got: list[Message] = []
    connected = False

    async def receive() -> Message:
        nonlocal connected
        if not connected:
            connected = True
            return {"type": "websocket.connect"}
        await anyio.sleep_forever()
        raise AssertionError("unreachable")

    async def send(message: Message) -> None:
        sent.append(message)

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        await receive()
        await send({"type": "websocket.accept"})
        got.append(await receive())  # blocks until the session ends

    user, _ = await auth.identify(query_token=None, header=None, cookie="session")
    assert user is not None
    auth.checks.clear()
    with anyio.fail_after(10):
        await sockets.serve(
            app,
            {"type": "websocket"},
            receive,
            send,
            user=user,
            query_token=None,
            header=None,
            cookie="session",
        )
    # Checked at the first end (the session had moved on: kept), then at the new one.
    assert auth.checks == [False, False]
    assert got == [{"type": "websocket.disconnect", "code": 1008}]
    assert sent == [
        {"type": "websocket.accept"},
        {"type": "websocket.close", "code": 1008, "reason": "credentials expired"},
    ]
    assert len(sockets) == 0
