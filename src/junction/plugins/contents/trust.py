"""Notebook trust: nbformat's signatures, so outputs a user produced are shown as trusted.

A notebook is *trusted* when an HMAC of its content, keyed with this server's secret, is in
the signature database (nbformat's ``NotebookNotary``: ``notebook_secret`` and
``nbsignatures.db``, by default in Junction's data directory, ``<jupyter data dir>/junction``;
``contents.notary_dir`` moves them). The digest covers the whole notebook except
``metadata.signature``, so changing any cell, output or metadata outside Junction makes the
notebook untrusted again. As in jupyter_server:

- reading a notebook sets ``metadata.trusted`` on every code cell to whether its signature is
  known (:meth:`NotebookTrust.mark`); JupyterLab sanitises the HTML and drops the JavaScript
  of untrusted outputs;
- saving signs the notebook when every code cell is trusted (JupyterLab sends
  ``metadata.trusted: true`` for cells the user ran) or has no rich output
  (:meth:`NotebookTrust.signable`, then :meth:`NotebookTrust.sign` over the bytes written);
- ``POST /api/contents/{path}/trust`` signs the notebook as it is on disk.

nbformat's SQLite store opens its connection for one thread; this module opens it for any
thread and serialises every use with a lock, since the contents service runs its filesystem
work in worker threads.
"""

from __future__ import annotations

import contextlib
import importlib
import logging
import os
import sqlite3
import threading
from pathlib import Path
from typing import Any

from junction.plugins.contents.notebooks import nbformat_module

__all__ = ["NotebookTrust", "default_notary_dir"]

log = logging.getLogger("junction.contents")

SECRET_FILE = "notebook_secret"  # noqa: S105 - a file name
DATABASE_FILE = "nbsignatures.db"


def default_notary_dir() -> Path:
    """Junction's data directory, where the secret and the signatures are kept by default."""
    from jupyter_core.paths import jupyter_data_dir

    return Path(jupyter_data_dir()) / "junction"


def _open_database(path: str) -> sqlite3.Connection:
    """The signatures database, usable from any thread (callers hold the lock)."""
    database = sqlite3.connect(
        path,
        detect_types=sqlite3.PARSE_DECLTYPES | sqlite3.PARSE_COLNAMES,
        check_same_thread=False,
    )
    try:
        database.execute("SELECT 1")
    except sqlite3.DatabaseError:
        database.close()
        raise
    return database


def _make_notary(directory: Path) -> Any:
    """nbformat's ``NotebookNotary`` over ``directory`` (typed Any: nbformat's is untyped)."""
    sign: Any = importlib.import_module("nbformat.sign")

    class SharedSQLiteStore(sign.SQLiteSignatureStore):  # type: ignore[misc]  # untyped base
        """nbformat's SQLite store with a connection any (one) thread may use at a time."""

        def _connect_db(self, db_file: str) -> sqlite3.Connection:
            try:
                database = _open_database(db_file)
                self.init_db(database)
            except sqlite3.DatabaseError as exc:
                log.warning(
                    "the notebook signatures database %s cannot be used (%s); signatures are "
                    "kept in memory until the server stops",
                    db_file,
                    exc,
                )
                database = _open_database(":memory:")
                self.init_db(database)
            return database

    directory.mkdir(mode=0o700, parents=True, exist_ok=True)
    database = str(directory / DATABASE_FILE)
    # Which notebooks the user trusts is theirs alone (nbformat creates it under the umask).
    with contextlib.suppress(OSError):  # unusable: the store falls back to memory
        os.close(os.open(database, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600))
        if os.stat(database).st_mode & 0o077:
            os.chmod(database, 0o600)
    return sign.NotebookNotary(
        data_dir=str(directory),
        db_file=database,
        secret_file=str(directory / SECRET_FILE),
        store_factory=lambda: SharedSQLiteStore(database),
    )


class _Notebook(dict[str, Any]):
    """A notebook as nbformat's notary reads it (``nb.nbformat``), without a deep copy.

    ``nbformat.from_dict`` copies every cell and output, which costs as much as the digest;
    the notary only reads the notebook (and puts ``metadata.signature`` back as it was).
    """

    @property
    def nbformat(self) -> Any:
        """The notebook's major format version."""
        return self.get("nbformat")


def _code_cells(notebook: dict[str, Any]) -> list[dict[str, Any]]:
    cells = notebook.get("cells")
    if not isinstance(cells, list):
        return []
    return [c for c in cells if isinstance(c, dict) and c.get("cell_type") == "code"]


class NotebookTrust:
    """Signs notebooks and checks their signatures; see the module docstring.

    The notary (secret, database) is created on first use, so a server that never opens a
    notebook creates neither file. Every method blocks: call them from worker threads.
    """

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self._lock = threading.Lock()
        self._notary: Any = None

    def _get_notary(self) -> Any:
        if self._notary is None:
            self._notary = _make_notary(self.directory)
        return self._notary

    def is_signed(self, notebook: dict[str, Any]) -> bool:
        """Whether this exact content was signed on this server (never one without an
        integer ``nbformat`` or a ``metadata`` object: nothing signed looks so)."""
        major = notebook.get("nbformat")
        if not isinstance(major, int) or not isinstance(notebook.get("metadata"), dict):
            return False
        with self._lock:
            return bool(self._get_notary().check_signature(_Notebook(notebook)))

    def mark(self, notebook: dict[str, Any]) -> bool:
        """Set ``metadata.trusted`` on every code cell of a notebook just read; return it."""
        trusted = self.is_signed(notebook)
        for cell in _code_cells(notebook):
            metadata = cell.setdefault("metadata", {})
            if isinstance(metadata, dict):
                metadata["trusted"] = trusted
        return trusted

    def signable(self, notebook: dict[str, Any]) -> bool:
        """Whether a notebook about to be saved may be signed: every code cell is marked
        trusted or has no rich output (nbformat's ``check_cells``). ``notebook`` is not
        changed."""
        node = nbformat_module().from_dict(notebook)  # a copy: check_cells pops the marks
        with self._lock:
            return bool(self._get_notary().check_cells(node))

    def sign(self, notebook: dict[str, Any]) -> None:
        """Record the notebook's signature, so reading this content marks it trusted."""
        with self._lock:
            self._get_notary().sign(_Notebook(notebook))

    def close(self) -> None:
        """Close the signatures database; called when the plugin stops."""
        with self._lock:
            if self._notary is not None:
                self._notary.close()
                self._notary = None
