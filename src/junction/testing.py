"""Helpers for testing Junction and its plugins in-process.

``app_client`` runs the whole app (lifespans included) behind an ``httpx.AsyncClient`` that
carries the token; ``serve_in_thread`` runs it on real uvicorn; ``ServerProcess`` runs the
``junction`` command itself. An in-process test reads as a client session::

    async with app_client(root_dir=tmp_path, enable=["contents"]) as client:
        response = await client.get("/api/contents")
"""

from __future__ import annotations

import glob
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import AsyncIterator, Iterator, Mapping, Sequence
from contextlib import asynccontextmanager, contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

from fastapi import FastAPI

from junction.app import create_app
from junction.plugin import Plugin
from junction.settings import ServerSettings

if TYPE_CHECKING:
    import httpx
    from websockets.asyncio.client import ClientConnection

__all__ = [
    "TEST_TOKEN",
    "PostgresCluster",
    "PostgresMissing",
    "ServerProcess",
    "app_client",
    "close_code",
    "execute_request",
    "free_port",
    "make_settings",
    "serve_in_thread",
    "terminal_echo",
    "user_headers",
]

TEST_TOKEN = "junction-test-token"  # noqa: S105 - a fixture, not a secret


async def user_headers(admin: httpx.AsyncClient, name: str) -> dict[str, str]:
    """Create the user ``name`` through an administrator's client (multi-user mode) and
    return the ``Authorization`` header of a new API token of theirs."""
    created = await admin.post("/api/users", json={"name": name})
    assert created.status_code == 201, created.text
    token = (await admin.post(f"/api/users/{name}/tokens")).json()["token"]
    return {"Authorization": f"token {token}"}


async def terminal_echo(ws: ClientConnection, word: str) -> None:
    """Run ``echo word`` in a terminal WebSocket and wait until ``word`` came back twice:
    the echoed command line, then its output. Fails after 30 s."""
    import json

    import anyio

    await ws.send(json.dumps(["stdin", f"echo {word}\r"]))
    seen = ""
    with anyio.fail_after(30):
        while seen.count(word) < 2:
            message = json.loads(await ws.recv())
            if message[0] == "stdout":
                seen += message[1]


async def close_code(ws: ClientConnection, within: float) -> int | None:
    """Read ``ws`` until the server closes it; the close code it sent (None without a close
    frame). Fails after ``within`` seconds."""
    import anyio
    from websockets.exceptions import ConnectionClosed

    with anyio.fail_after(within):
        try:
            while True:
                await ws.recv()
        except ConnectionClosed as exc:
            return exc.rcvd.code if exc.rcvd is not None else None


def execute_request(code: str, *, store_history: bool = False) -> tuple[str, dict[str, Any]]:
    """An ``execute_request`` for a kernel's channels WebSocket (JSON protocol) and its
    ``msg_id``, which the replies carry as their parent's."""
    msg_id = uuid.uuid4().hex
    header = {
        "msg_id": msg_id,
        "msg_type": "execute_request",
        "username": "test",
        "session": uuid.uuid4().hex,
        "date": "2026-01-01T00:00:00Z",
        "version": "5.3",
    }
    content = {"code": code, "silent": False, "store_history": store_history}
    message = {
        "channel": "shell",
        "header": header,
        "parent_header": {},
        "metadata": {},
        "content": content,
        "buffers": [],
    }
    return msg_id, message


def make_settings(**overrides: Any) -> ServerSettings:
    """Settings for tests: a fixed token and cookie secret, no browser, no plugins by default."""
    values: dict[str, Any] = {
        "token": TEST_TOKEN,
        "cookie_secret": "junction-test-cookie-secret",
        "open_browser": False,
        "profile": "none",
    }
    values.update(overrides)
    return ServerSettings.model_validate(values)


@asynccontextmanager
async def app_client(
    *,
    plugins: Sequence[Plugin] = (),
    plugin_settings: Mapping[str, Mapping[str, Any]] | None = None,
    authenticated: bool = True,
    **overrides: Any,
) -> AsyncIterator[Any]:
    """An ``httpx.AsyncClient`` talking to a running in-process app built from ``overrides``.

    ``plugins`` are inline plugins to enable; ``plugin_settings`` maps plugin names to their
    settings sections. Requires the ``dev`` extra (httpx, asgi-lifespan).
    """
    if plugin_settings is not None:
        overrides["plugins"] = {name: dict(values) for name, values in plugin_settings.items()}
    import httpx
    from asgi_lifespan import LifespanManager

    app = create_app(make_settings(**overrides), plugins=plugins)
    headers = {"Authorization": f"token {TEST_TOKEN}"} if authenticated else {}
    async with LifespanManager(app) as manager:
        transport = httpx.ASGITransport(app=manager.app)
        async with httpx.AsyncClient(
            transport=transport, base_url="http://localhost:8888", headers=headers
        ) as client:
            client.app = app  # type: ignore[attr-defined]  # handy for tests reaching services
            yield client


class ServerProcess:
    """A ``junction`` command running in a subprocess, for tests that cross the real wire.

    Its stderr (logs and the startup banner) goes to ``log_path``; ``url`` is the base URL
    parsed from the banner, so ``--port 0`` works.
    """

    def __init__(self, args: Sequence[str], *, log_path: Path, token: str = TEST_TOKEN) -> None:
        self.args = list(args)
        self.log_path = log_path
        self.token = token
        self.url = ""
        self.process: subprocess.Popen[bytes] | None = None

    def start(self, timeout: float = 60.0) -> ServerProcess:
        """Start the server and wait until it answers ``/api``; raises RuntimeError if not."""
        command = [
            sys.executable,
            "-m",
            "junction.cli",
            "--no-browser",
            "--token",
            self.token,
            *self.args,
        ]
        env = {**os.environ, "PYTHONUNBUFFERED": "1"}
        with self.log_path.open("wb") as log:
            self.process = subprocess.Popen(
                command, stdout=log, stderr=subprocess.STDOUT, env=env, start_new_session=True
            )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"junction exited early:\n{self.log()}")
            match = _BANNER_URL.search(self.log())
            if match:
                self.url = match.group(1) + "/"
                return self
            time.sleep(0.05)
        self.stop()
        raise RuntimeError(f"junction did not start within {timeout} s:\n{self.log()}")

    def log(self) -> str:
        """Everything the server has written so far."""
        return self.log_path.read_text(errors="replace")

    @property
    def pid(self) -> int:
        """The server's process id."""
        assert self.process is not None
        return self.process.pid

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 30.0) -> int:
        """Send ``sig`` and wait for the exit; returns the exit status (kills after timeout)."""
        assert self.process is not None
        if self.process.poll() is None:
            self.process.send_signal(sig)
            try:
                self.process.wait(timeout)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait()
        return self.process.returncode

    def __enter__(self) -> ServerProcess:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()


_BANNER_URL = re.compile(r"(https?://127\.0\.0\.1:\d+)\S*")


def free_port() -> int:
    """A TCP port on 127.0.0.1 that was free a moment ago."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextmanager
def serve_in_thread(
    *,
    plugins: Sequence[Plugin] = (),
    plugin_settings: Mapping[str, Mapping[str, Any]] | None = None,
    **overrides: Any,
) -> Iterator[tuple[str, FastAPI]]:
    """Run an app built from ``overrides`` on real uvicorn in a thread; yield its base URL.

    For wire tests that need inline plugins, which a subprocess cannot be given.
    """
    import uvicorn

    from junction.server import uvicorn_config

    if plugin_settings is not None:
        overrides["plugins"] = {name: dict(values) for name, values in plugin_settings.items()}
    settings = make_settings(**{"ip": "127.0.0.1", **overrides})
    app = create_app(settings, plugins=plugins)
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    server = uvicorn.Server(uvicorn_config(app, settings))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            raise RuntimeError("in-thread server did not start")
        time.sleep(0.01)
    try:
        yield f"http://127.0.0.1:{port}{settings.base_url}", app
    finally:
        server.should_exit = True
        thread.join(30)
        sock.close()


class PostgresMissing(RuntimeError):
    """Debian's ``postgresql`` binaries (``initdb``, ``pg_ctl``, ``psql``) are not installed."""


class PostgresCluster:
    """One PostgreSQL server in ``directory``, listening on 127.0.0.1:``port`` only.

    Built from Debian's ``postgresql`` package binaries: trust authentication, ``fsync``
    off. PostgreSQL refuses to run as root, so as root the binaries run as the ``postgres``
    user the package creates (who must be able to enter ``directory``).
    """

    def __init__(self, directory: Path) -> None:
        found = sorted(glob.glob("/usr/lib/postgresql/*/bin/pg_ctl"))
        if not found:
            raise PostgresMissing("PostgreSQL is missing: apt-get install -y postgresql")
        self.bin = Path(found[-1]).parent
        self.directory = directory
        self.data = directory / "data"
        self.port = free_port()
        self._as_root = os.geteuid() == 0

    def _run(self, *command: str) -> subprocess.CompletedProcess[str]:
        prefix = ["runuser", "-u", "postgres", "--"] if self._as_root else []
        done = subprocess.run(
            [*prefix, *command], capture_output=True, text=True, check=False, timeout=120
        )
        if done.returncode != 0:
            raise RuntimeError(f"{' '.join(command)} failed:\n{done.stdout}\n{done.stderr}")
        return done

    def init(self) -> PostgresCluster:
        """Create the cluster (trust authentication on loopback only)."""
        self.directory.mkdir(parents=True, exist_ok=True)
        if self._as_root:
            shutil.chown(self.directory, "postgres", "postgres")
        self._run(
            str(self.bin / "initdb"),
            "-D",
            str(self.data),
            "-U",
            "postgres",
            "--auth=trust",
            "--no-sync",
            "--encoding=UTF8",
            "--locale=C",
        )
        return self

    def start(self) -> None:
        """Start the server and wait until it accepts connections."""
        options = (
            f"-p {self.port} -k {self.directory} -c listen_addresses=127.0.0.1 "
            # No fsync (the machine does not crash under a test), but every commit reaches the
            # WAL before it returns: an immediate stop must not forget committed transactions.
            "-c fsync=off -c full_page_writes=off"
        )
        log = str(self.directory / "server.log")
        self._run(
            str(self.bin / "pg_ctl"), "-D", str(self.data), "-l", log, "-o", options, "-w", "start"
        )

    def stop(self) -> None:
        """Stop the server now (open connections are cut)."""
        self._run(str(self.bin / "pg_ctl"), "-D", str(self.data), "-m", "immediate", "-w", "stop")

    def sql(self, statement: str, database: str = "postgres") -> str:
        """Run one statement with ``psql``; returns its unaligned output."""
        done = self._run(
            str(self.bin / "psql"),
            "-h",
            "127.0.0.1",
            "-p",
            str(self.port),
            "-U",
            "postgres",
            "-d",
            database,
            "-v",
            "ON_ERROR_STOP=1",
            "-At",
            "-c",
            statement,
        )
        return done.stdout.strip()

    def url(self, database: str = "postgres", password: str | None = None) -> str:
        """The SQLAlchemy URL of ``database`` on this server."""
        user = "postgres" if password is None else f"postgres:{password}"
        return f"postgresql+asyncpg://{user}@127.0.0.1:{self.port}/{database}"

    def create_database(self) -> str:
        """A new empty database; returns its name."""
        name = "t_" + uuid.uuid4().hex[:16]
        self.sql(f"CREATE DATABASE {name} TEMPLATE template0")
        return name
