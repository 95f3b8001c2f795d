"""An open WebSocket does not outlive its credentials: once its token is revoked or its
account disabled through the API, the server closes it with code 1008 (policy violation)
within a few seconds, while other users' WebSockets stay open.

A real multi-user ``junction`` server (users, terminals, kernels) with real PTYs and a real
ipykernel, driven over the wire with the ``websockets`` client.
"""

from __future__ import annotations

import json
import logging
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import anyio
import httpx
import pytest
from starlette.types import ASGIApp, Message, Receive, Scope, Send
from websockets.asyncio.client import ClientConnection, connect

from junction.auth import sockets as sockets_module
from junction.auth.identity import Authenticator, AuthMethod, User
from junction.auth.sockets import REVOKED_CLOSE_CODE, OpenSockets
from junction.errors import DatabaseUnavailable
from junction.logs import WarningThrottle
from junction.testing import (
    TEST_TOKEN,
    ServerProcess,
    close_code,
    execute_request,
    make_settings,
    terminal_echo,
)

pytestmark = pytest.mark.anyio

ADMIN = {"Authorization": f"token {TEST_TOKEN}"}
WITHIN = 10.0
"""Seconds a revocation may take to close a WebSocket: the users plugin's own generation
poll (1 s) would already do, a local revocation does it at once."""


@pytest.fixture(scope="module")
def root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The servers' root directory, holding their shared SQLite database."""
    return tmp_path_factory.mktemp("revoked-websockets")


def start_server(root: Path, name: str) -> ServerProcess:
    """A multi-user server with terminals and kernels on the database in ``root``."""
    args = ["--port", "0", "--ip", "127.0.0.1", "--profile", "none", "--enable", "users"]
    args += ["--enable", "terminals", "--enable", "kernelspecs", "--enable", "kernels"]
    args += ["--root-dir", str(root)]
    args += ["--set", f"database_url=sqlite+aiosqlite:///{root}/junction.db"]
    return ServerProcess(args, log_path=root / f"{name}.log")


@pytest.fixture(scope="module")
def server(root: Path) -> Iterator[ServerProcess]:
    """One multi-user server for the module."""
    with start_server(root, "server") as running:
        yield running


@pytest.fixture(scope="module")
def replica(root: Path, server: ServerProcess) -> Iterator[ServerProcess]:
    """A second server on the same database, as a replica behind a proxy is."""
    with start_server(root, "replica") as running:
        yield running


def new_user(server: ServerProcess, *, admin: bool = False) -> tuple[str, int, dict[str, str]]:
    """A new account with an API token: its name, the token's id, headers carrying it."""
    name = f"u{uuid.uuid4().hex[:8]}"
    body = {"name": name, "admin": admin}
    created = httpx.post(f"{server.url}api/users", json=body, headers=ADMIN)
    assert created.status_code == 201, created.text
    issued = httpx.post(f"{server.url}api/users/{name}/tokens", headers=ADMIN, timeout=30)
    assert issued.status_code == 201, issued.text
    return name, issued.json()["id"], {"Authorization": f"token {issued.json()['token']}"}


def ws_url(server: ServerProcess, path: str) -> str:
    """The ``ws://`` URL of ``path`` under the server's base URL."""
    return server.url.replace("http", "ws", 1) + path


def new_terminal(server: ServerProcess, headers: dict[str, str]) -> str:
    """Start a terminal as the holder of ``headers``; returns its name."""
    created = httpx.post(f"{server.url}api/terminals", headers=headers, timeout=30)
    assert created.status_code == 200, created.text
    name: str = created.json()["name"]
    return name


async def test_revoking_a_token_closes_its_terminal_websocket(server: ServerProcess) -> None:
    ana, token_id, as_ana = new_user(server)
    _, _, as_bob = new_user(server)
    ana_term = new_terminal(server, as_ana)
    bob_term = new_terminal(server, as_bob)
    async with (
        connect(ws_url(server, f"terminals/websocket/{ana_term}"), additional_headers=as_ana) as a,
        connect(ws_url(server, f"terminals/websocket/{bob_term}"), additional_headers=as_bob) as b,
    ):
        await terminal_echo(a, "before-revocation")
        await terminal_echo(b, "before-revocation")
        revoked = httpx.delete(f"{server.url}api/users/{ana}/tokens/{token_id}", headers=ADMIN)
        assert revoked.status_code == 204, revoked.text
        assert await close_code(a, WITHIN) == 1008
        await terminal_echo(b, "after-revocation")  # another user's socket stays open
    assert httpx.get(f"{server.url}api/me", headers=as_ana).status_code in (401, 403)


async def test_disabling_an_account_closes_its_terminal_and_kernel_websockets(
    server: ServerProcess,
) -> None:
    carl, _, as_carl = new_user(server)
    _, _, as_dora = new_user(server)
    carl_term = new_terminal(server, as_carl)
    dora_term = new_terminal(server, as_dora)
    started = httpx.post(f"{server.url}api/kernels", json={}, headers=as_carl, timeout=60)
    assert started.status_code == 201, started.text
    kernel = started.json()["id"]
    try:
        async with (
            connect(
                ws_url(server, f"terminals/websocket/{carl_term}"), additional_headers=as_carl
            ) as term,
            connect(
                ws_url(server, f"api/kernels/{kernel}/channels"),
                additional_headers=as_carl,
                max_size=None,
            ) as channels,
            connect(
                ws_url(server, f"terminals/websocket/{dora_term}"), additional_headers=as_dora
            ) as other,
        ):
            await terminal_echo(term, "before-disabling")
            await execute(channels, "1 + 1")
            disabled = httpx.patch(
                f"{server.url}api/users/{carl}", json={"enabled": False}, headers=ADMIN
            )
            assert disabled.status_code == 200, disabled.text
            assert await close_code(term, WITHIN) == 1008
            assert await close_code(channels, WITHIN) == 1008
            await terminal_echo(other, "after-disabling")
    finally:
        httpx.delete(f"{server.url}api/kernels/{kernel}", headers=ADMIN, timeout=60)


async def execute(channels: ClientConnection, code: str) -> None:
    """Run ``code`` on a kernel's channels WebSocket and wait for its reply."""
    msg_id, message = execute_request(code)
    await channels.send(json.dumps(message))
    with anyio.fail_after(60):
        while True:
            reply: dict[str, Any] = json.loads(await channels.recv())
            if (
                reply.get("parent_header", {}).get("msg_id") == msg_id
                and reply.get("msg_type") == "execute_reply"
            ):
                assert reply["content"]["status"] == "ok", reply["content"]
                return


async def test_demoting_an_admin_closes_their_websocket_on_another_users_kernel(
    server: ServerProcess,
) -> None:
    fay, _, as_fay = new_user(server, admin=True)
    gus, _, as_gus = new_user(server)
    started = httpx.post(f"{server.url}api/kernels", json={}, headers=as_gus, timeout=60)
    assert started.status_code == 201, started.text
    kernel = started.json()["id"]
    url = ws_url(server, f"api/kernels/{kernel}/channels")
    try:
        async with connect(url, additional_headers=as_fay, max_size=None) as channels:
            await execute(channels, "1 + 1")
            regrouped = httpx.patch(
                f"{server.url}api/users/{gus}", json={"groups": ["g1"]}, headers=ADMIN
            )
            assert regrouped.status_code == 200, regrouped.text
            await execute(channels, "2 + 2")  # another user's change: still open
            demoted = httpx.patch(
                f"{server.url}api/users/{fay}", json={"admin": False}, headers=ADMIN
            )
            assert demoted.status_code == 200, demoted.text
            assert demoted.json()["admin"] is False
            assert await close_code(channels, WITHIN) == 1008
        kernel_url = f"{server.url}api/kernels/{kernel}"
        assert httpx.get(kernel_url, headers=as_fay).status_code in (403, 404)
        assert httpx.get(kernel_url, headers=as_gus).status_code == 200
    finally:
        httpx.delete(f"{server.url}api/kernels/{kernel}", headers=ADMIN, timeout=60)


async def test_a_token_revoked_through_another_server_closes_its_websocket(
    server: ServerProcess, replica: ServerProcess
) -> None:
    eve, token_id, as_eve = new_user(server)
    term = new_terminal(replica, as_eve)
    url = ws_url(replica, f"terminals/websocket/{term}")
    async with connect(url, additional_headers=as_eve) as ws:
        await terminal_echo(ws, "before-revocation")
        revoked = httpx.delete(f"{server.url}api/users/{eve}/tokens/{token_id}", headers=ADMIN)
        assert revoked.status_code == 204, revoked.text
        assert await close_code(ws, WITHIN) == 1008  # through the replica's generation poll


def test_the_servers_wrote_no_traceback(server: ServerProcess, replica: ServerProcess) -> None:
    for running in (server, replica):
        assert "Traceback" not in running.log(), running.log()


# -- in process: the ASGI side of OpenSockets ----------------------------------------------


def authenticator() -> Authenticator:
    """A real authenticator whose token stands for its one user."""
    return Authenticator(make_settings(token=TEST_TOKEN), cookie_secret=b"s" * 32)


async def serve_with_token_header(
    sockets: OpenSockets, auth: Authenticator, app: ASGIApp, receive: Receive, send: Send
) -> None:
    """Serve ``app`` as a WebSocket authenticated by the server token in its header."""
    await sockets.serve(
        app,
        {"type": "websocket"},
        receive,
        send,
        user=auth.user,
        query_token=None,
        header=f"token {TEST_TOKEN}",
        cookie=None,
    )


async def test_a_revoked_socket_gets_one_close_and_its_app_a_disconnect() -> None:
    auth = authenticator()
    sockets = OpenSockets(auth)
    incoming: list[Message] = [{"type": "websocket.connect"}]
    sent: list[Message] = []
    got: list[Message] = []
    client_waits = anyio.Event()

    async def receive() -> Message:
        if incoming:
            return incoming.pop(0)
        client_waits.set()
        await anyio.sleep_forever()
        raise AssertionError("unreachable")

    async def send(message: Message) -> None:
        sent.append(message)

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        got.append(await receive())
        await send({"type": "websocket.accept"})
        got.append(await receive())  # blocks until the credentials are revoked
        await send({"type": "websocket.send", "text": "dropped"})
        await send({"type": "websocket.close", "code": 1000})

    async def revoke_when_idle() -> None:
        await client_waits.wait()
        sockets.changed()  # still valid: nothing happens
        auth.token = "another-token"
        sockets.changed()

    with anyio.fail_after(10):
        async with anyio.create_task_group() as tg:
            tg.start_soon(revoke_when_idle)
            await serve_with_token_header(sockets, auth, app, receive, send)
    assert got == [
        {"type": "websocket.connect"},
        {"type": "websocket.disconnect", "code": REVOKED_CLOSE_CODE},
    ]
    assert sent == [
        {"type": "websocket.accept"},
        {"type": "websocket.close", "code": REVOKED_CLOSE_CODE, "reason": "credentials revoked"},
    ]
    assert len(sockets) == 0


async def test_an_app_error_leaves_serve_as_is() -> None:
    auth = authenticator()
    sockets = OpenSockets(auth)

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        raise ValueError("the app's own error")

    async def nothing() -> Message:
        raise AssertionError("not called")

    async def ignore(message: Message) -> None:
        raise AssertionError("not called")

    with pytest.raises(ValueError, match="the app's own error"):
        await sockets.serve(
            app,
            {"type": "websocket"},
            nothing,
            ignore,
            user=auth.user,
            query_token=TEST_TOKEN,
            header=None,
            cookie=None,
        )
    assert len(sockets) == 0


class FlakyAuthenticator(Authenticator):
    """An authenticator whose checks fail (database down) while ``down`` is set."""

    down = False
    failures = 0
    failed_thrice: anyio.Event
    touches: list[bool]

    async def identify(
        self,
        *,
        query_token: str | None,
        header: str | None,
        cookie: str | None,
        touch: bool = True,
    ) -> tuple[User | None, AuthMethod | None]:
        """:meth:`Authenticator.identify`, or :class:`DatabaseUnavailable` while down."""
        self.touches.append(touch)
        if self.down:
            self.failures += 1
            if self.failures == 3:
                self.failed_thrice.set()
            raise DatabaseUnavailable("the database is down")
        return await super().identify(
            query_token=query_token, header=header, cookie=cookie, touch=touch
        )


async def test_a_check_that_fails_is_tried_again_until_it_closes_a_revoked_socket(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setattr(sockets_module, "_FIRST_RETRY", 0.01)
    logger = logging.getLogger("junction.auth")
    monkeypatch.setattr(sockets_module, "_RECHECK_WARNINGS", WarningThrottle(logger))
    caplog.set_level(logging.WARNING, logger="junction.auth")
    auth = FlakyAuthenticator(make_settings(token=TEST_TOKEN), cookie_secret=b"s" * 32)
    auth.failed_thrice = anyio.Event()
    auth.touches = []
    sockets = OpenSockets(auth)
    client_waits = anyio.Event()
    got: list[Message] = []

    async def receive() -> Message:
        if not client_waits.is_set():
            client_waits.set()
            return {"type": "websocket.connect"}
        await anyio.sleep_forever()
        raise AssertionError("unreachable")

    async def send(message: Message) -> None:
        pass

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        await receive()
        await send({"type": "websocket.accept"})
        got.append(await receive())  # blocks until the credentials are revoked

    async def revoke_while_down() -> None:
        await client_waits.wait()
        auth.down = True
        auth.token = "another-token"  # revoked while the check cannot be made
        sockets.changed()  # one change, then nothing: the retries alone must close it
        await auth.failed_thrice.wait()
        auth.down = False

    with anyio.fail_after(10):
        async with anyio.create_task_group() as tg:
            tg.start_soon(revoke_while_down)
            await serve_with_token_header(sockets, auth, app, receive, send)
    assert got == [{"type": "websocket.disconnect", "code": REVOKED_CLOSE_CODE}]
    assert auth.failures >= 3
    # The checks are the server's own: a session's idle deadline is left as it was.
    assert auth.touches
    assert not any(auth.touches)
    logged = [r.getMessage() for r in caplog.records if r.name == "junction.auth"]
    assert logged == [  # one line for the whole outage
        "cannot check an open WebSocket's credentials again: the database is down"
    ]
