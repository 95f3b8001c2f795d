"""child_environment: what kernels, terminals and apps inherit from the server."""

from __future__ import annotations

import pytest

from junction.childenv import child_environment


def test_junction_settings_are_left_out_and_the_rest_kept() -> None:
    source = {"JUNCTION_TOKEN": "t", "JUNCTION_KERNELS__X": "1", "PATH": "/bin", "HOME": "/h"}
    assert child_environment(source) == {"PATH": "/bin", "HOME": "/h"}


def test_the_server_environment_is_the_default(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("JUNCTION_COOKIE_SECRET", "s")
    monkeypatch.setenv("SOME_TOOL_HOME", "/opt/tool")
    environment = child_environment()
    assert "JUNCTION_COOKIE_SECRET" not in environment
    assert environment["SOME_TOOL_HOME"] == "/opt/tool"


def test_database_passwords_are_left_out_and_other_secrets_kept() -> None:
    source = {
        "POSTGRES_PASSWORD": "p",
        "PGPASSWORD": "p",
        "DATABASE_URL": "postgresql://u:p@db/x",
        "MYSQL_ROOT_PASSWORD": "p",
        "SNOWFLAKE_PASSWORD": "mine",
        "PGHOST": "db",
        "PATH": "/bin",
    }
    assert child_environment(source) == {
        "SNOWFLAKE_PASSWORD": "mine",
        "PGHOST": "db",
        "PATH": "/bin",
    }
