"""A PostgreSQL server of the run's own, from Debian's ``postgresql`` package binaries.

``initdb`` and ``pg_ctl`` in a temporary directory under ``/tmp`` (the ``postgres`` user must
be able to enter it), listening on a free port of 127.0.0.1 only, trust authentication,
``fsync`` off. PostgreSQL refuses to run as root, so as root the binaries run as the
``postgres`` user the package creates. :meth:`Postgres.close` stops it and removes the
directory; an ``atexit`` hook does the same for a run cut short.
"""

from __future__ import annotations

import atexit
import contextlib
import glob
import os
import shutil
import subprocess
import tempfile
from pathlib import Path

from bench.processes import free_port

__all__ = ["Postgres", "PostgresMissing"]


class PostgresMissing(RuntimeError):
    """The PostgreSQL binaries are not installed."""


_LIVE: set[Postgres] = set()


class Postgres:
    """One PostgreSQL server in a temporary directory, for the ``postgres`` database."""

    def __init__(self) -> None:
        found = sorted(glob.glob("/usr/lib/postgresql/*/bin/pg_ctl"))
        if not found:
            raise PostgresMissing("PostgreSQL is missing: apt-get install -y postgresql")
        self.bin = Path(found[-1]).parent
        self.directory = Path(tempfile.mkdtemp(prefix="bench-pg-"))
        self.data = self.directory / "data"
        self.port = free_port()
        self._as_root = os.geteuid() == 0
        self._running = False

    def _run(self, *command: str) -> None:
        prefix = ["runuser", "-u", "postgres", "--"] if self._as_root else []
        done = subprocess.run(
            [*prefix, *command], capture_output=True, text=True, check=False, timeout=120
        )
        if done.returncode != 0:
            raise RuntimeError(f"{' '.join(command)} failed:\n{done.stdout}\n{done.stderr}")

    def start(self) -> Postgres:
        """Create the cluster and start the server; returns once it accepts connections."""
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
        options = (
            f"-p {self.port} -k {self.directory} -c listen_addresses=127.0.0.1 "
            "-c fsync=off -c full_page_writes=off"
        )
        _LIVE.add(self)
        self._running = True
        self._run(
            str(self.bin / "pg_ctl"),
            "-D",
            str(self.data),
            "-l",
            str(self.directory / "server.log"),
            "-o",
            options,
            "-w",
            "start",
        )
        return self

    @property
    def url(self) -> str:
        """The SQLAlchemy URL of the ``postgres`` database (what Junction's
        ``database_url`` takes)."""
        return f"postgresql+asyncpg://postgres@127.0.0.1:{self.port}/postgres"

    def close(self) -> None:
        """Stop the server at once and remove its directory."""
        _LIVE.discard(self)
        try:
            if self._running:
                self._running = False
                self._run(
                    str(self.bin / "pg_ctl"), "-D", str(self.data), "-m", "immediate", "-w", "stop"
                )
        finally:
            shutil.rmtree(self.directory, ignore_errors=True)


@atexit.register
def _close_all() -> None:
    for server in list(_LIVE):
        with contextlib.suppress(RuntimeError):
            server.close()
