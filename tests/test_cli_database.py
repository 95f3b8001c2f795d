"""A database that cannot be opened stops ``junction`` with one line and status 1: the URL
with its password masked and the driver's reason, never a traceback nor the password.

The real command in a subprocess: PostgreSQL on a port nobody listens on, and an SQLite file
under a path whose "directory" is a file.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

JUNCTION = Path(sys.executable).parent / "junction"
"""The ``junction`` entry point of the environment running the tests."""

PASSWORD = "pw-s3cret-42"


def junction(tmp_path: Path, database_url: str) -> subprocess.CompletedProcess[str]:
    """Run ``junction`` with the users plugin (it has tables) on ``database_url``, in a home
    of its own, with no Junction or Jupyter variables from the environment; bounded."""
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("JUPYTERHUB_", "JUNCTION_", "JUPYTER_"))
    }
    env |= {
        "HOME": str(tmp_path),
        "JUPYTER_DATA_DIR": str(tmp_path / "data"),
        "JUPYTER_CONFIG_DIR": str(tmp_path / "config"),
        "JUPYTER_RUNTIME_DIR": str(tmp_path / "runtime"),
    }
    config = tmp_path / "junction.toml"
    config.write_text("")
    command = [str(JUNCTION), "--config", str(config), "--no-browser", "--ip", "127.0.0.1"]
    command += ["--port", "0", "--root-dir", str(tmp_path), "--profile", "none"]
    command += ["--enable", "users", "--set", f"database_url={database_url}"]
    return subprocess.run(command, capture_output=True, text=True, env=env, timeout=60, check=False)


def errors(stderr: str) -> list[str]:
    """The lines of ``stderr`` the command itself wrote (the others are log lines)."""
    return [line for line in stderr.splitlines() if line.startswith("junction: ")]


def test_an_unreachable_postgresql_is_one_line_without_its_password(tmp_path: Path) -> None:
    result = junction(tmp_path, f"postgresql+asyncpg://ana:{PASSWORD}@127.0.0.1:1/junction")
    assert result.returncode == 1, result.stderr
    assert "Traceback" not in result.stderr
    assert PASSWORD not in result.stderr + result.stdout
    [line] = errors(result.stderr)
    assert line.startswith(
        "junction: cannot open the database postgresql+asyncpg://ana:***@127.0.0.1:1/junction: "
    )
    assert "refused" in line.lower()  # the driver's reason
    assert result.stdout == ""


def test_a_password_in_the_query_string_is_masked_too(tmp_path: Path) -> None:
    result = junction(
        tmp_path, f"postgresql+asyncpg://ana@127.0.0.1:1/junction?password={PASSWORD}"
    )
    assert result.returncode == 1, result.stderr
    assert PASSWORD not in result.stderr + result.stdout
    [line] = errors(result.stderr)
    assert "postgresql+asyncpg://ana@127.0.0.1:1/junction?password=***: " in line


@pytest.mark.parametrize("kind", ["under-a-file", "a-directory"])
def test_an_sqlite_file_that_cannot_be_opened_is_one_line(tmp_path: Path, kind: str) -> None:
    (tmp_path / "a-file").write_text("")
    (tmp_path / "a-dir").mkdir()
    path = tmp_path / ("a-file/junction.db" if kind == "under-a-file" else "a-dir")
    result = junction(tmp_path, f"sqlite+aiosqlite:///{path}")
    assert result.returncode == 1, result.stderr
    assert "Traceback" not in result.stderr
    [line] = errors(result.stderr)
    assert line.startswith(f"junction: cannot open the database sqlite+aiosqlite:///{path}: ")
    assert len(line) > len(f"junction: cannot open the database sqlite+aiosqlite:///{path}: ")
    assert result.stdout == ""
