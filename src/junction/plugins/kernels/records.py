"""Kernel records in the database (``kernels_kernels``), with the connection key sealed.

Every client kernel has a row while it runs (pool kernels get one when handed out): enough
for a server started later, or another server sharing the database, to reach the kernel
over ZeroMQ and to find its process again. The row names the server process running the
kernel (``host:pid:nonce``) and that process renews ``heartbeat`` (every sixth of
``kernels.lease_timeout``); a row whose process is gone (a dead pid on the same host, or a
heartbeat older than ``lease_timeout``) may be claimed by another process with one
conditional ``UPDATE``, so only one wins.

The connection key (and any other secret of the connection info, such as CurveZMQ keys)
signs every message to the kernel: whoever holds it runs code. It is never stored in plain
text: it is sealed with Fernet (AES-128-CBC + HMAC-SHA256) under a key derived with HKDF
from the server's cookie secret, so servers sharing the database must share the cookie
secret (they share it already, for logins). It is never logged.
"""

from __future__ import annotations

import base64
import logging
import os
import socket
import time
import uuid
from dataclasses import dataclass, field
from typing import Any

import orjson
from cryptography.fernet import Fernet, InvalidToken
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from sqlalchemy import Row, delete, select, update
from sqlalchemy.dialects import postgresql, sqlite

from junction.database import Database
from junction.plugins.kernels.tables import KERNELS_TABLE

__all__ = [
    "KernelRecord",
    "KernelRecords",
    "Sealer",
    "pid_alive",
    "same_host",
    "server_gone",
    "server_id",
]

log = logging.getLogger("junction.kernels")

_NONCE = uuid.uuid4().hex[:8]
"""Tells this process from an earlier one that had the same pid (containers reuse pids)."""


def _host() -> str:
    """This host and its pid namespace: a (host, pid) pair names one live process."""
    try:
        namespace = os.readlink("/proc/self/ns/pid")
    except OSError:
        namespace = ""
    return f"{socket.gethostname()}/{namespace}"


def server_id() -> str:
    """This process, as rows name it: ``host:pid:nonce``."""
    return f"{_host()}:{os.getpid()}:{_NONCE}"


def pid_alive(pid: int) -> bool:
    """Whether process ``pid`` runs on this host (a zombie, only waiting to be reaped, does
    not count)."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as stat:
            fields = stat.read().rpartition(b")")[2].split()
        return not fields or fields[0] not in (b"Z", b"X")
    except FileNotFoundError:
        return False
    except OSError:
        pass
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def server_gone(server: str, heartbeat: float, *, now: float, stale: float) -> bool:
    """Whether the process named ``server`` no longer runs its kernels: on this host, its
    pid is dead (or is this process, so an earlier one); else, its heartbeat is older than
    ``stale`` seconds (it died elsewhere, or is frozen)."""
    if server == server_id():
        return False
    parts = server.rsplit(":", 2)
    if len(parts) == 3 and parts[0] == _host() and parts[1].isdigit():
        pid = int(parts[1])
        if pid == os.getpid() or not pid_alive(pid):
            return True
    return heartbeat < now - stale


def same_host(server: str) -> bool:
    """Whether ``server`` runs on this host (so its kernels' pids mean something here)."""
    return server.rsplit(":", 2)[0] == _host()


class Sealer:
    """Seals and opens connection secrets under a key derived from the cookie secret."""

    def __init__(self, cookie_secret: bytes) -> None:
        derived = HKDF(
            algorithm=hashes.SHA256(),
            length=32,
            salt=b"junction-kernels",
            info=b"kernel connection secrets",
        ).derive(cookie_secret)
        self._fernet = Fernet(base64.urlsafe_b64encode(derived))

    def seal(self, secrets: dict[str, str]) -> str:
        """The sealed text of ``secrets``."""
        return self._fernet.encrypt(orjson.dumps(secrets)).decode()

    def open(self, sealed: str) -> dict[str, str]:
        """The secrets again; raises ``ValueError`` when sealed under another secret."""
        try:
            opened = orjson.loads(self._fernet.decrypt(sealed.encode()))
        except (InvalidToken, orjson.JSONDecodeError):
            raise ValueError("sealed under another cookie secret") from None
        if not isinstance(opened, dict):
            raise ValueError("not a sealed mapping")
        return {str(k): str(v) for k, v in opened.items()}


_SECRET_FIELDS = ("key",)


def _is_secret(name: str) -> bool:
    return name in _SECRET_FIELDS or "secret" in name


def _plain(value: Any) -> Any:
    return value.decode() if isinstance(value, bytes) else value


@dataclass
class KernelRecord:
    """One kernel's row, the secrets opened."""

    id: str
    name: str
    cwd: str
    connection: dict[str, Any]
    provisioner: dict[str, Any]
    server: str = ""
    owner: str | None = None
    heartbeat: float = 0.0
    last_activity: float = field(default_factory=time.time)
    execution_state: str = "idle"
    stop: bool = False


class KernelRecords:
    """The ``kernels_kernels`` rows; every method is one transaction and raises
    :class:`~junction.errors.DatabaseUnavailable` when the database cannot be reached."""

    def __init__(self, database: Database, sealer: Sealer) -> None:
        self._database = database
        self._sealer = sealer
        self.server = server_id()

    async def save(self, record: KernelRecord) -> None:
        """Write ``record`` as run by this process (insert, or replace the row)."""
        record.server = self.server
        record.heartbeat = time.time()
        plain = {k: _plain(v) for k, v in record.connection.items() if not _is_secret(k)}
        secrets = {k: str(_plain(v)) for k, v in record.connection.items() if _is_secret(k)}
        values = {
            "id": record.id,
            "seq": time.time_ns(),
            "name": record.name,
            "owner": record.owner,
            "cwd": record.cwd,
            "connection": orjson.dumps(plain).decode(),
            "sealed_key": self._sealer.seal(secrets),
            "provisioner": orjson.dumps(record.provisioner, default=str).decode(),
            "server": record.server,
            "heartbeat": record.heartbeat,
            "last_activity": record.last_activity,
            "execution_state": record.execution_state,
            "stop": False,
        }
        dialect = self._database.engine.dialect.name
        insert: Any = postgresql.insert if dialect == "postgresql" else sqlite.insert
        kept = ("id", "seq")  # a reattached or restarted kernel keeps its place in listings
        statement = insert(KERNELS_TABLE).values(**values)
        statement = statement.on_conflict_do_update(
            index_elements=["id"], set_={k: v for k, v in values.items() if k not in kept}
        )
        async with self._database.session() as session:
            await session.execute(statement)

    async def remove(self, kernel_id: str) -> None:
        """Forget a kernel's row."""
        async with self._database.session() as session:
            await session.execute(delete(KERNELS_TABLE).where(KERNELS_TABLE.c.id == kernel_id))

    async def get(self, kernel_id: str) -> KernelRecord | None:
        """The row of ``kernel_id`` (None when missing or sealed under another secret)."""
        async with self._database.session() as session:
            row = (
                await session.execute(select(KERNELS_TABLE).where(KERNELS_TABLE.c.id == kernel_id))
            ).first()
        return self._record(row) if row is not None else None

    async def all(self) -> list[KernelRecord]:
        """Every row, in start order (those sealed under another secret left out)."""
        async with self._database.session() as session:
            rows = (
                await session.execute(select(KERNELS_TABLE).order_by(KERNELS_TABLE.c.seq))
            ).all()
        return [record for row in rows if (record := self._record(row)) is not None]

    async def claim(self, record: KernelRecord) -> bool:
        """Take over the row of a gone process; True if this process won it.

        The row must still name the process and heartbeat ``record`` was read with, so of
        several processes claiming at once exactly one succeeds.
        """
        now = time.time()
        table = KERNELS_TABLE
        async with self._database.session() as session:
            result = await session.execute(
                update(table)
                .where(
                    (table.c.id == record.id)
                    & (table.c.server == record.server)
                    & (table.c.heartbeat == record.heartbeat)
                )
                .values(server=self.server, heartbeat=now)
            )
        won = bool(getattr(result, "rowcount", 0) == 1)
        if won:
            record.server, record.heartbeat = self.server, now
        return won

    async def beat(
        self, states: dict[str, tuple[str, float, str | None]]
    ) -> tuple[set[str], set[str], set[str]]:
        """Renew the heartbeat, ``execution_state``, ``last_activity`` and ``owner`` of each
        kernel of ``states`` this process runs.

        Returns the ids whose row names another process now (taken over), those with no row
        (to write again), and those another process asked to stop.
        """
        now = time.time()
        table = KERNELS_TABLE
        async with self._database.session() as session:
            for kernel_id, (state, activity, owner) in states.items():
                await session.execute(
                    update(table)
                    .where((table.c.id == kernel_id) & (table.c.server == self.server))
                    .values(
                        heartbeat=now, execution_state=state, last_activity=activity, owner=owner
                    )
                )
            rows = (
                await session.execute(
                    select(table.c.id, table.c.server, table.c.stop).where(
                        table.c.id.in_(list(states)) | (table.c.server == self.server)
                    )
                )
            ).all()
        taken = {row.id for row in rows if row.server != self.server and row.id in states}
        missing = set(states) - {row.id for row in rows}
        stop = {row.id for row in rows if row.server == self.server and row.stop}
        return taken, missing, stop

    async def request_stop(self, kernel_id: str) -> None:
        """Ask the process running ``kernel_id`` to shut it down (at its next heartbeat, or
        at once when it notices the kernel exit)."""
        async with self._database.session() as session:
            await session.execute(
                update(KERNELS_TABLE).where(KERNELS_TABLE.c.id == kernel_id).values(stop=True)
            )

    async def stop_requested(self, kernel_id: str) -> bool:
        """Whether another process asked for ``kernel_id`` to be shut down."""
        async with self._database.session() as session:
            row = (
                await session.execute(
                    select(KERNELS_TABLE.c.stop).where(KERNELS_TABLE.c.id == kernel_id)
                )
            ).first()
        return row is not None and bool(row.stop)

    def _record(self, row: Row[Any]) -> KernelRecord | None:
        try:
            secrets = self._sealer.open(row.sealed_key)
        except ValueError:
            log.warning(
                "kernel %s: its record cannot be read with this server's cookie secret; "
                "servers sharing a database need the same cookie_secret",
                row.id,
            )
            return None
        connection = {**orjson.loads(row.connection), **secrets}
        return KernelRecord(
            id=row.id,
            name=row.name,
            owner=row.owner,
            cwd=row.cwd,
            connection=connection,
            provisioner=orjson.loads(row.provisioner),
            server=row.server,
            heartbeat=row.heartbeat,
            last_activity=row.last_activity,
            execution_state=row.execution_state,
            stop=bool(row.stop),
        )
