"""A PostgreSQL server of the run's own: :class:`junction.testing.PostgresCluster` in a
temporary directory under ``/tmp`` (the ``postgres`` user must be able to enter it).

:meth:`Postgres.close` stops it and removes the directory; an ``atexit`` hook does the same
for a run cut short.
"""

from __future__ import annotations

import atexit
import contextlib
import shutil
import tempfile
from pathlib import Path

from junction.testing import PostgresCluster, PostgresMissing

__all__ = ["Postgres", "PostgresMissing"]

_LIVE: set[Postgres] = set()


class Postgres:
    """One PostgreSQL server in a temporary directory, for the ``postgres`` database."""

    def __init__(self) -> None:
        self.directory = Path(tempfile.mkdtemp(prefix="bench-pg-"))
        self._cluster = PostgresCluster(self.directory)
        self._running = False

    def start(self) -> Postgres:
        """Create the cluster and start the server; returns once it accepts connections."""
        self._cluster.init()
        _LIVE.add(self)
        self._running = True
        self._cluster.start()
        return self

    @property
    def url(self) -> str:
        """The SQLAlchemy URL of the ``postgres`` database (what Junction's
        ``database_url`` takes)."""
        return self._cluster.url()

    def close(self) -> None:
        """Stop the server at once and remove its directory."""
        _LIVE.discard(self)
        try:
            if self._running:
                self._running = False
                self._cluster.stop()
        finally:
            shutil.rmtree(self.directory, ignore_errors=True)


@atexit.register
def _close_all() -> None:
    for server in list(_LIVE):
        with contextlib.suppress(RuntimeError):
            server.close()
