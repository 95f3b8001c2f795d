"""Shared fixtures: the anyio backend for async tests, a private Jupyter data dir (so each
test has its own ``junction.db``), and PostgreSQL (``conftest_pg``)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

# postgres_cluster, postgres_url and database_url (see conftest_pg.py).
pytest_plugins = ["conftest_pg"]


@pytest.fixture
def anyio_backend() -> str:
    """Run async tests on asyncio, the loop uvicorn uses."""
    return "asyncio"


@pytest.fixture(scope="session", autouse=True)
def session_jupyter_data_dir(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """A Jupyter data dir for the whole run, set before any module-scoped server starts, so
    no test ever reads or writes the user's own ``junction.db``."""
    path = tmp_path_factory.mktemp("session-jupyter-data")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("JUPYTER_DATA_DIR", str(path))
        yield path


@pytest.fixture(autouse=True)
def jupyter_data_dir(
    tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch
) -> Path:
    """A Jupyter data dir of the test's own, holding the default database ``junction.db``.

    Servers the test starts (in-process or as subprocesses) share it, so state survives their
    restarts within the test but never leaks into another test or the user's own.
    """
    path = tmp_path_factory.mktemp("jupyter-data")
    monkeypatch.setenv("JUPYTER_DATA_DIR", str(path))
    return path
