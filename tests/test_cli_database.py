"""A database that cannot be opened stops ``junction`` with one line and status 1: the URL
with its password masked and the driver's reason, never a traceback nor the password.

The real command in a subprocess: PostgreSQL on a port nobody listens on, and an SQLite file
under a path whose "directory" is a file.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest
from tests.test_config_errors import errors
from tests.test_config_errors import junction as run_junction

PASSWORD = "pw-s3cret-42"


def junction(tmp_path: Path, database_url: str) -> subprocess.CompletedProcess[str]:
    """Run ``junction`` with the users plugin (it has tables) on ``database_url``."""
    return run_junction(
        tmp_path, "--profile", "none", "--enable", "users", "--set", f"database_url={database_url}"
    )


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


def test_an_option_the_driver_does_not_take_is_a_bad_setting(tmp_path: Path) -> None:
    result = junction(tmp_path, f"postgresql+asyncpg://ana@127.0.0.1:1/junction?pwd={PASSWORD}")
    assert result.returncode == 2, result.stderr  # a bad setting, not an unreachable database
    assert "Traceback" not in result.stderr
    assert PASSWORD not in result.stderr + result.stdout
    [line] = errors(result.stderr)
    assert "?pwd=***" in line
    assert "unexpected keyword argument 'pwd'" in line


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
