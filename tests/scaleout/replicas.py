"""Several real Junction replicas on one real PostgreSQL, behind real nginx.

:func:`start_replica_set` starts a PostgreSQL cluster of its own (so a test may stop and
start it), N ``junction`` subprocesses (:class:`junction.testing.ServerProcess`) with the same
``database_url``, token, cookie secret and root directory, each on a fixed port so it comes
back at the same address after a restart, and nginx in front with the configuration
``junction deploy nginx --replicas`` writes (its access log names the replica that answered
each request). ``ReplicaSet.close()`` stops everything, in reverse order.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol, TypeVar

import httpx
from sqlalchemy import text
from sqlalchemy.ext.asyncio import create_async_engine

from junction.deploy import ReplicasLayout, nginx_config
from junction.testing import TEST_TOKEN, ServerProcess, free_port

__all__ = [
    "COOKIE_SECRET",
    "FAIL_TIMEOUT_SECONDS",
    "KEEP_KERNELS",
    "Postgres",
    "Replica",
    "ReplicaSet",
    "replica_set_running",
    "start_nginx",
    "start_replica_set",
    "wait_until",
]

COOKIE_SECRET = "scale-out-cookie-secret-shared-by-every-replica"

FAIL_TIMEOUT_SECONDS = 2
"""How long the set's nginx leaves out a replica it could not reach (nginx's default is 10)."""

KEEP_KERNELS = (
    "--set",
    "kernels.keep_on_shutdown=true",
    "--set",
    "kernels.orphan_grace=60",
    "--set",
    "kernels.lease_timeout=6",
)
"""Settings for kernels that outlive their replica: kept on a graceful stop, left 60 s after a
crash for another replica to adopt, and a heartbeat every second (a sixth of the lease)."""

T = TypeVar("T")


class Postgres(Protocol):
    """What the set needs of a PostgreSQL server (``conftest_pg.PostgresCluster``)."""

    def init(self) -> Postgres:
        """Create the cluster."""

    def start(self) -> None:
        """Start the server; returns once it accepts connections."""

    def stop(self) -> None:
        """Stop the server at once, cutting open connections."""

    def url(self, database: str = "postgres", password: str | None = None) -> str:
        """The SQLAlchemy URL of ``database``."""

    def create_database(self) -> str:
        """Create an empty database; returns its name."""


def wait_until(
    condition: Callable[[], T | None], *, timeout: float = 20.0, what: str = "the condition"
) -> T:
    """Poll ``condition`` until it returns something truthy; AssertionError after ``timeout``."""
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}")
        time.sleep(0.05)


def _wait_for_port(port: int, timeout: float = 20.0) -> None:
    def listening() -> bool:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1):
                return True
        except OSError:
            return False

    wait_until(listening, timeout=timeout, what=f"a listener on port {port}")


@dataclass
class Replica:
    """One Junction replica: its fixed address, its process and its log file."""

    index: int
    port: int
    args: list[str]
    log_path: Path
    token: str
    process: ServerProcess = field(init=False)

    def __post_init__(self) -> None:
        self.process = ServerProcess(self.args, log_path=self.log_path, token=self.token)

    @property
    def address(self) -> str:
        """``127.0.0.1:PORT``, as nginx's upstream and access log name it."""
        return f"127.0.0.1:{self.port}"

    @property
    def url(self) -> str:
        """The replica's own base URL, bypassing nginx."""
        return f"http://{self.address}/"

    def log(self) -> str:
        """Everything this replica wrote (every run since the set started)."""
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def start(self) -> None:
        """Start the process (again) and wait until it serves and is ready."""
        self.process = ServerProcess(self.args, log_path=self.log_path, token=self.token)
        # Keep the logs of earlier runs: ServerProcess truncates its log file.
        previous = self.log()
        self.process.start(timeout=90)
        if previous:
            self.log_path.with_suffix(f".{time.monotonic_ns()}.log").write_text(previous)
        try:
            wait_until(self.ready, timeout=60, what=f"replica {self.index} to be ready")
        except AssertionError as exc:
            raise AssertionError(f"{exc}; its log ends with:\n{self.log()[-3000:]}") from None

    def ready(self) -> bool:
        """Whether ``/api/health/ready`` answers 200."""
        try:
            return httpx.get(self.url + "api/health/ready", timeout=5).status_code == 200
        except httpx.HTTPError:
            return False

    def alive(self) -> bool:
        """Whether the process still runs."""
        popen = self.process.process
        return popen is not None and popen.poll() is None

    def kill(self) -> None:
        """``kill -9`` the replica's process group (the server and whatever it started)."""
        popen = self.process.process
        assert popen is not None
        with contextlib.suppress(ProcessLookupError):
            os.killpg(popen.pid, signal.SIGKILL)
        popen.wait(30)

    def stop(self) -> None:
        """Stop the replica gracefully (SIGTERM), if it runs."""
        if self.alive():
            self.process.stop()


@dataclass
class ReplicaSet:
    """PostgreSQL, the replicas and nginx; ``nginx_url`` is what clients use."""

    postgres: Postgres
    database_url: str
    root: Path
    directory: Path
    replicas: list[Replica]
    nginx_url: str
    nginx_dir: Path
    token: str = TEST_TOKEN
    cookie_secret: str = COOKIE_SECRET
    nginx: subprocess.Popen[bytes] | None = None

    def client(self) -> httpx.Client:
        """An httpx client on nginx, authenticated with the shared token."""
        headers = {"Authorization": f"token {self.token}"}
        return httpx.Client(base_url=self.nginx_url, headers=headers, timeout=30)

    def replica_client(self, replica: Replica) -> httpx.Client:
        """An httpx client on one replica directly, bypassing nginx."""
        headers = {"Authorization": f"token {self.token}"}
        return httpx.Client(base_url=replica.url, headers=headers, timeout=30)

    def access_log(self) -> str:
        """nginx's access log so far (one line per request, naming the replica)."""
        path = self.nginx_dir / "access.log"
        return path.read_text(errors="replace") if path.exists() else ""

    def upstream_of(self, request_id: str) -> str:
        """The ``host:port`` nginx sent the request with ``X-Request-ID: request_id`` to.

        When nginx tried several replicas, the last one (the one that answered).
        """
        pattern = re.compile(rf"id={re.escape(request_id)} upstream=(.+?) upstream_status=")

        def found() -> str | None:
            match = pattern.search(self.access_log())
            return match.group(1).split(", ")[-1] if match else None

        try:
            return wait_until(found, timeout=10, what=f"request {request_id} in the access log")
        except AssertionError as exc:
            tail = self.access_log()[-2000:]
            raise AssertionError(f"{exc}; the access log ends with:\n{tail}") from None

    def replica_of(self, server: str) -> Replica:
        """The replica whose process a kernel record's ``server`` (``host:pid:nonce``) names."""
        pid = int(server.rsplit(":", 2)[1])  # the host may hold colons
        for replica in self.replicas:
            if replica.alive() and replica.process.pid == pid:
                return replica
        raise AssertionError(f"no running replica is the server {server}")

    def kernel_server(self, kernel_id: str) -> str | None:
        """The ``server`` of the kernel's record in PostgreSQL (None without a record)."""

        async def read() -> str | None:
            engine = create_async_engine(self.database_url)
            try:
                async with engine.connect() as connection:
                    found = await connection.execute(
                        text("SELECT server FROM kernels_kernels WHERE id = :id"), {"id": kernel_id}
                    )
                    server: str | None = found.scalar_one_or_none()
                    return server
            finally:
                await engine.dispose()

        return asyncio.run(read())

    def server_other_than(self, kernel_id: str, replica: Replica) -> str | None:
        """The ``server`` of the kernel's record, once it names another process than
        ``replica``."""
        server = self.kernel_server(kernel_id)
        if server is None or f":{replica.process.pid}:" in server:
            return None
        return server

    def adopter_of(self, kernel_id: str, launcher: Replica) -> Replica | None:
        """The replica that runs the kernel once it is no longer ``launcher``."""
        server = self.server_other_than(kernel_id, launcher)
        return None if server is None else self.replica_of(server)

    def connections(self, kernel_id: str) -> dict[int, int]:
        """The kernel's WebSocket connections on each live replica that has any (by replica
        index), asking each replica itself."""
        counts: dict[int, int] = {}
        for replica in self.replicas:
            if not replica.alive():
                continue
            try:
                with self.replica_client(replica) as direct:
                    model = direct.get(f"api/kernels/{kernel_id}")
            except httpx.HTTPError:  # starting again, or stopping: nothing attached
                continue
            if model.status_code == 200 and model.json()["connections"]:
                counts[replica.index] = model.json()["connections"]
        return counts

    def shutdown_kernels(self) -> None:
        """Shut down every kernel through a running replica (kept kernels outlive replicas)."""
        for replica in self.replicas:
            if not replica.alive():
                continue
            with self.replica_client(replica) as client, contextlib.suppress(httpx.HTTPError):
                for kernel in client.get("api/kernels").json():
                    client.delete(f"api/kernels/{kernel['id']}", timeout=60)
            return

    def kill(self, index: int) -> Replica:
        """``kill -9`` replica ``index``; returns it."""
        replica = self.replicas[index]
        replica.kill()
        return replica

    def restart(self, index: int) -> Replica:
        """Start replica ``index`` again (killing it first if it still runs)."""
        replica = self.replicas[index]
        if replica.alive():
            replica.kill()
        replica.start()
        return replica

    def close(self) -> None:
        """Stop nginx, the replicas and PostgreSQL; remove the temporary directory."""
        try:
            if self.nginx is not None and self.nginx.poll() is None:
                self.nginx.send_signal(signal.SIGQUIT)
                try:
                    self.nginx.wait(10)
                except subprocess.TimeoutExpired:
                    self.nginx.kill()
                    self.nginx.wait()
            with ThreadPoolExecutor(len(self.replicas)) as pool:
                list(pool.map(lambda replica: replica.stop(), self.replicas))
        finally:
            with contextlib.suppress(RuntimeError):
                self.postgres.stop()
            shutil.rmtree(self.directory, ignore_errors=True)


def start_nginx(layout: ReplicasLayout, directory: Path, port: int) -> subprocess.Popen[bytes]:
    nginx = shutil.which("nginx") or "/usr/sbin/nginx"
    assert Path(nginx).exists(), "nginx is required (apt-get install nginx-light)"
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "nginx.conf").write_text(nginx_config(layout, standalone=directory))
    process = subprocess.Popen(
        [
            nginx,
            "-p",
            str(directory),
            "-c",
            str(directory / "nginx.conf"),
            "-e",
            str(directory / "error.log"),
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    _wait_for_port(port)
    return process


def start_replica_set(
    postgres_cluster: Callable[[Path], Postgres],
    count: int = 3,
    *,
    profile: str = "full",
    extra_args: Sequence[str] = (),
    fail_timeout: str = f"{FAIL_TIMEOUT_SECONDS}s",
) -> ReplicaSet:
    """Start PostgreSQL, ``count`` replicas of ``profile`` and nginx; close() stops them.

    ``postgres_cluster`` makes the server in a directory (``conftest_pg.PostgresCluster``).

    ``fail_timeout`` is how long nginx leaves out a replica it could not reach (shorter than
    the 10 s default, so a test sees a restarted replica come back soon).

    The directory lives outside pytest's (private to root) so the postgres user can enter it.
    """
    directory = Path(tempfile.mkdtemp(prefix="junction-scaleout-"))
    directory.chmod(0o711)  # the postgres user passes through to its own folder
    postgres = postgres_cluster(directory / "postgres")
    started: ReplicaSet | None = None
    replicas: list[Replica] = []
    try:
        postgres.init()
        postgres.start()
        database_url = postgres.url(postgres.create_database())
        root = directory / "root"
        root.mkdir()
        for index in range(count):
            port = free_port()
            args = [
                "--profile",
                profile,
                "--port",
                str(port),
                "--root-dir",
                str(root),
                "--log-level",
                "debug",
                "--set",
                f"database_url={database_url}",
                "--set",
                f"cookie_secret={COOKIE_SECRET}",
                # bash without the machine's rc files, whose start-up is not ours to test.
                "--set",
                'terminals.shell_command=["/bin/bash", "--norc", "--noprofile", "-i"]',
                *extra_args,
            ]
            replicas.append(
                Replica(index, port, args, directory / f"replica{index}.log", TEST_TOKEN)
            )
        with ThreadPoolExecutor(count) as pool:
            list(pool.map(lambda replica: replica.start(), replicas))
        nginx_port = free_port()
        layout = ReplicasLayout(
            listen=f"127.0.0.1:{nginx_port}",
            replicas=tuple(replica.address for replica in replicas),
            fail_timeout=fail_timeout,
        )
        started = ReplicaSet(
            postgres=postgres,
            database_url=database_url,
            root=root,
            directory=directory,
            replicas=replicas,
            nginx_url=f"http://127.0.0.1:{nginx_port}/",
            nginx_dir=directory / "nginx",
        )
        started.nginx = start_nginx(layout, started.nginx_dir, nginx_port)
        return started
    except BaseException:
        if started is not None:
            started.close()
        else:
            for replica in replicas:
                with contextlib.suppress(Exception):
                    replica.stop()
            with contextlib.suppress(RuntimeError):
                postgres.stop()
            shutil.rmtree(directory, ignore_errors=True)
        raise


@contextlib.contextmanager
def replica_set_running(
    postgres_cluster: Callable[[Path], Postgres],
    count: int = 3,
    *,
    profile: str = "full",
    extra_args: Sequence[str] = (),
) -> Iterator[ReplicaSet]:
    """:func:`start_replica_set` as a context manager."""
    replica_set = start_replica_set(postgres_cluster, count, profile=profile, extra_args=extra_args)
    try:
        yield replica_set
    finally:
        replica_set.close()
