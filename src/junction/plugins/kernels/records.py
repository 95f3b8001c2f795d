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

The seal also binds the row: it holds, beside the secrets, the exact values of every column
a server acts upon (``id``, ``name``, ``owner``, ``cwd``, the plain ``connection`` info with
its ports, transport and signature scheme, the ``provisioner`` info with the pid, process
group and connection file, and ``server``). A row whose columns differ from its seal (a key
copied into another row, an owner, a pid or a path changed by someone with write access to
the database but without the cookie secret) is never acted upon: reads leave it out with a
warning. Only ``heartbeat``, ``last_activity``, ``execution_state``, ``stop``,
``restart_requested``, ``restarted``, ``restart_refused``, ``restart_refused_after``,
``clients_until`` and ``seq``
stay outside the seal: every replica writes them, and none of them names a process, a file
or a person (at worst a forged one stops or restarts a kernel, which anyone allowed to reach
it may do anyway, or turns a restart's answer into a refusal).
Whoever changes a sealed column (a save, a claim, an owner change) seals again.
"""

from __future__ import annotations

import base64
import logging
import os
import socket
import time
import uuid
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any

import orjson
from sqlalchemy import Row, case, delete, select, text, update

from junction.database import Database
from junction.plugins.kernels.tables import KERNELS_TABLE

if TYPE_CHECKING:
    from cryptography.fernet import Fernet

__all__ = [
    "NOTIFY_CHANNEL",
    "KernelRecord",
    "KernelRecords",
    "RestartProgress",
    "Sealer",
    "pid_alive",
    "same_host",
    "server_gone",
    "server_id",
]

log = logging.getLogger("junction.kernels")

NOTIFY_CHANNEL = "junction_kernels"
"""The PostgreSQL notification channel that wakes servers when a restart is asked of them."""

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
    """Seals and opens mappings (connection secrets and the columns they are bound to) under
    a key derived from the cookie secret."""

    def __init__(self, cookie_secret: bytes) -> None:
        self._cookie_secret = cookie_secret
        self._fernet: Fernet | None = None

    def _cipher(self) -> Fernet:
        # cryptography (about 6 MB of memory) loads with the first kernel persisted or
        # reattached, not with every server that never seals anything.
        if self._fernet is None:
            from cryptography.fernet import Fernet
            from cryptography.hazmat.primitives import hashes
            from cryptography.hazmat.primitives.kdf.hkdf import HKDF

            derived = HKDF(
                algorithm=hashes.SHA256(),
                length=32,
                salt=b"junction-kernels",
                info=b"kernel connection secrets",
            ).derive(self._cookie_secret)
            self._fernet = Fernet(base64.urlsafe_b64encode(derived))
        return self._fernet

    def seal(self, payload: dict[str, Any]) -> str:
        """The sealed text of ``payload`` (JSON values)."""
        return self._cipher().encrypt(orjson.dumps(payload)).decode()

    def open(self, sealed: str) -> dict[str, Any]:
        """The mapping again; raises ``ValueError`` when sealed under another secret."""
        from cryptography.fernet import InvalidToken

        try:
            opened = orjson.loads(self._cipher().decrypt(sealed.encode()))
        except (InvalidToken, orjson.JSONDecodeError):
            raise ValueError("sealed under another cookie secret") from None
        if not isinstance(opened, dict):
            raise ValueError("not a sealed mapping")
        return {str(k): v for k, v in opened.items()}


_SECRET_FIELDS = ("key",)

_BOUND = ("id", "name", "owner", "cwd", "connection", "provisioner", "server")
"""The columns the seal binds: all but those every replica renews (see the module docstring)."""


def _is_secret(name: str) -> bool:
    return name in _SECRET_FIELDS or "secret" in name


def _raised(column: Any, value: float) -> Any:
    """``column`` set to ``value`` only where that raises it (replicas never lower each
    other's times)."""
    return case((column < value, value), else_=column)


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


@dataclass(frozen=True)
class RestartProgress:
    """Where a restart asked of another server stands, from the kernel's row."""

    server: str
    heartbeat: float
    restarted: int
    execution_state: str
    refused: str | None = None
    """Why the running server refused the last restart it answered (None: it restarted)."""
    refused_after: int = 0
    """The requests numbered above this, up to ``restarted``, were ``refused``; those
    before it were carried out."""

    def refusal(self, number: int) -> str | None:
        """Why request ``number`` (answered: ``restarted >= number``) was refused, or None
        when it was carried out (by its own restart, or a later one)."""
        if self.refused is not None and number > self.refused_after:
            return self.refused
        return None


class KernelRecords:
    """The ``kernels_kernels`` rows; every method is one transaction and raises
    :class:`~junction.errors.DatabaseUnavailable` when the database cannot be reached."""

    def __init__(self, database: Database, sealer: Sealer) -> None:
        self._database = database
        self._sealer = sealer
        self.server = server_id()
        self._saved: dict[str, KernelRecord] = {}
        """The records this process last sealed, to seal again when the owner changes."""
        self._warned: set[tuple[str, str]] = set()
        self.renewed: dict[str, tuple[float, float]] = {}
        """``last_activity`` and ``clients_until`` of this process's rows as of the last
        :meth:`beat` (other processes raise them for the clients attached through them)."""

    @property
    def database(self) -> Database:
        """The database the rows are in."""
        return self._database

    @property
    def dialect(self) -> str:
        """The database's dialect name (``sqlite``, ``postgresql``)."""
        return self._database.engine.dialect.name

    async def save(self, record: KernelRecord) -> None:
        """Write ``record`` as run by this process (insert, or replace the row)."""
        record.server = self.server
        record.heartbeat = time.time()
        values = {
            **self._sealed(record),
            "seq": time.time_ns(),
            "heartbeat": record.heartbeat,
            "last_activity": record.last_activity,
            "execution_state": record.execution_state,
            "stop": False,
        }
        # Imported here: the PostgreSQL dialect alone is 2.4 MB a SQLite server never needs.
        from sqlalchemy.dialects import postgresql, sqlite

        dialect = self._database.engine.dialect.name
        insert: Any = postgresql.insert if dialect == "postgresql" else sqlite.insert
        kept = ("id", "seq")  # a reattached or restarted kernel keeps its place in listings
        statement = insert(KERNELS_TABLE).values(**values)
        statement = statement.on_conflict_do_update(
            index_elements=["id"], set_={k: v for k, v in values.items() if k not in kept}
        )
        async with self._database.session() as session:
            await session.execute(statement)
        self._saved[record.id] = replace(record, connection=dict(record.connection))

    async def remove(self, kernel_id: str) -> None:
        """Forget a kernel's row."""
        self._saved.pop(kernel_id, None)
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
        sealed = self._sealed(replace(record, server=self.server))
        async with self._database.session() as session:
            result = await session.execute(
                update(table)
                .where(
                    (table.c.id == record.id)
                    & (table.c.server == record.server)
                    & (table.c.heartbeat == record.heartbeat)
                )
                .values(server=self.server, heartbeat=now, sealed_key=sealed["sealed_key"])
            )
        won = bool(getattr(result, "rowcount", 0) == 1)
        if won:
            record.server, record.heartbeat = self.server, now
        return won

    async def beat(
        self, states: dict[str, tuple[str, float, str | None]]
    ) -> tuple[set[str], set[str], set[str]]:
        """Renew the heartbeat, ``execution_state`` and ``last_activity`` of each kernel of
        ``states`` this process runs, and its ``owner`` when it changed (sealing again).

        Returns the ids whose row names another process now (taken over), those with no row
        (to write again), and those another process asked to stop.
        """
        now = time.time()
        table = KERNELS_TABLE
        resealed: dict[str, KernelRecord] = {}
        async with self._database.session() as session:
            for kernel_id, (state, activity, owner) in states.items():
                values: dict[str, Any] = {
                    "heartbeat": now,
                    "execution_state": state,
                    "last_activity": _raised(table.c.last_activity, activity),
                }
                saved = self._saved.get(kernel_id)
                if saved is not None and saved.owner != owner:
                    resealed[kernel_id] = replace(saved, owner=owner)
                    sealed = self._sealed(resealed[kernel_id])
                    values |= {"owner": owner, "sealed_key": sealed["sealed_key"]}
                await session.execute(
                    update(table)
                    .where((table.c.id == kernel_id) & (table.c.server == self.server))
                    .values(**values)
                )
            rows = (
                await session.execute(
                    select(
                        table.c.id,
                        table.c.server,
                        table.c.stop,
                        table.c.last_activity,
                        table.c.clients_until,
                    ).where(table.c.id.in_(list(states)) | (table.c.server == self.server))
                )
            ).all()
        taken = {row.id for row in rows if row.server != self.server and row.id in states}
        missing = set(states) - {row.id for row in rows}
        stop = {row.id for row in rows if row.server == self.server and row.stop}
        self.renewed = {
            row.id: (row.last_activity, row.clients_until)
            for row in rows
            if row.server == self.server
        }
        self._saved |= resealed
        for kernel_id in taken:
            self._saved.pop(kernel_id, None)
        return taken, missing, stop

    async def report_clients(self, clients: dict[str, tuple[float, float]]) -> None:
        """For kernels of other processes with WebSocket clients attached through this one:
        raise each row's ``last_activity`` and ``clients_until`` to the given pair (the
        clients' last message to the kernel; until when they count as attached)."""
        table = KERNELS_TABLE
        async with self._database.session() as session:
            for kernel_id, (activity, until) in clients.items():
                await session.execute(
                    update(table)
                    .where((table.c.id == kernel_id) & (table.c.server != self.server))
                    .values(
                        last_activity=_raised(table.c.last_activity, activity),
                        clients_until=_raised(table.c.clients_until, until),
                    )
                )

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

    async def request_restart(self, kernel_id: str) -> int | None:
        """Ask the process running ``kernel_id`` to restart it; the request's number (done
        once ``restarted`` reaches it), or None when the kernel has no row.

        On PostgreSQL the request also notifies :data:`NOTIFY_CHANNEL` (delivered at commit),
        so the running process need not wait for its next heartbeat.
        """
        table = KERNELS_TABLE
        async with self._database.session() as session:
            # The row stays locked until commit, so the number read back is this request's.
            await session.execute(
                update(table)
                .where(table.c.id == kernel_id)
                .values(restart_requested=table.c.restart_requested + 1)
            )
            number = (
                await session.execute(
                    select(table.c.restart_requested).where(table.c.id == kernel_id)
                )
            ).scalar()
            if number is not None and self._database.engine.dialect.name == "postgresql":
                await session.execute(
                    text("SELECT pg_notify(:channel, :id)"),
                    {"channel": NOTIFY_CHANNEL, "id": kernel_id},
                )
        return None if number is None else int(number)

    async def restart_requests(self) -> dict[str, int]:
        """The kernels of this process with a restart pending, and the newest request's
        number."""
        table = KERNELS_TABLE
        async with self._database.session() as session:
            rows = (
                await session.execute(
                    select(table.c.id, table.c.restart_requested).where(
                        (table.c.server == self.server)
                        & (table.c.restart_requested > table.c.restarted)
                    )
                )
            ).all()
        return {row.id: int(row.restart_requested) for row in rows}

    async def mark_restarted(
        self, kernel_id: str, number: int, execution_state: str, *, refused: str | None = None
    ) -> None:
        """Record that this process answered the restarts of ``kernel_id`` up to request
        ``number``: it carried them out, and the kernel is in ``execution_state`` after it, or
        it ``refused`` them, for that reason (the message a local request would get)."""
        table = KERNELS_TABLE
        async with self._database.session() as session:
            await session.execute(
                update(table)
                .where(
                    (table.c.id == kernel_id)
                    & (table.c.server == self.server)
                    & (table.c.restarted < number)
                )
                .values(
                    restarted=number,
                    execution_state=execution_state,
                    restart_refused=refused,
                    # The count answered before this answer (the row's value, not the new one).
                    restart_refused_after=None if refused is None else table.c.restarted,
                )
            )

    async def restart_progress(self, kernel_id: str) -> RestartProgress | None:
        """Where restarts of ``kernel_id`` stand (None when it has no row)."""
        table = KERNELS_TABLE
        async with self._database.session() as session:
            row = (
                await session.execute(
                    select(
                        table.c.server,
                        table.c.heartbeat,
                        table.c.restarted,
                        table.c.execution_state,
                        table.c.restart_refused,
                        table.c.restart_refused_after,
                    ).where(table.c.id == kernel_id)
                )
            ).first()
        if row is None:
            return None
        return RestartProgress(
            server=row.server,
            heartbeat=row.heartbeat,
            restarted=int(row.restarted),
            execution_state=row.execution_state,
            refused=row.restart_refused,
            refused_after=row.restart_refused_after or 0,
        )

    def _sealed(self, record: KernelRecord) -> dict[str, Any]:
        """The sealed columns of ``record`` and ``sealed_key``, which binds them."""
        plain = {k: _plain(v) for k, v in record.connection.items() if not _is_secret(k)}
        secrets = {k: str(_plain(v)) for k, v in record.connection.items() if _is_secret(k)}
        bound = {
            "id": record.id,
            "name": record.name,
            "owner": record.owner,
            "cwd": record.cwd,
            "connection": orjson.dumps(plain).decode(),
            "provisioner": orjson.dumps(record.provisioner, default=str).decode(),
            "server": record.server,
        }
        return {**bound, "sealed_key": self._sealer.seal({"secrets": secrets, "row": bound})}

    def _record(self, row: Row[Any]) -> KernelRecord | None:
        try:
            opened = self._sealer.open(row.sealed_key)
        except ValueError:
            self._warn(
                row,
                "kernel %s: its record cannot be read with this server's cookie secret; "
                "servers sharing a database need the same cookie_secret",
            )
            return None
        bound, secrets = opened.get("row"), opened.get("secrets")
        if (
            not isinstance(bound, dict)
            or not isinstance(secrets, dict)
            or any(bound.get(column) != getattr(row, column) for column in _BOUND)
        ):
            self._warn(
                row,
                "kernel %s: its record does not match its seal (changed outside this server, "
                "or written by an older version); it is ignored",
            )
            return None
        connection = {**orjson.loads(row.connection), **{k: str(v) for k, v in secrets.items()}}
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

    def _warn(self, row: Row[Any], message: str) -> None:
        """Log ``message`` about an unreadable row once (rows are read every heartbeat)."""
        seen = (row.id, row.sealed_key)
        if seen not in self._warned:
            if len(self._warned) > 1000:
                self._warned.clear()
            self._warned.add(seen)
            log.warning(message, row.id)
