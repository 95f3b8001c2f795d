"""A bad setting stops ``junction`` with one line and status 2, never a traceback.

The real command in a subprocess, with the error found at each stage of the startup: while
the settings are read (the command line, a config file), while the app is built (the plugin
set), and while the plugins start (the ASGI lifespan: the hub plugin checks its settings
there).
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

JUNCTION = Path(sys.executable).parent / "junction"
"""The ``junction`` entry point of the environment running the tests."""


def junction(tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """Run ``junction`` (serving on a free loopback port) with ``args``, in a home of its
    own, with no Hub or Junction variables from the environment; bounded, in case it serves."""
    config = tmp_path / "junction.toml"
    if not config.exists():
        config.write_text("")
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
    command = [str(JUNCTION), "--config", str(config), "--no-browser", "--ip", "127.0.0.1"]
    return subprocess.run(
        [*command, "--port", "0", "--root-dir", str(tmp_path), *args],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
        check=False,
    )


def errors(stderr: str) -> list[str]:
    """The lines of ``stderr`` the command itself wrote (the others are log lines)."""
    return [line for line in stderr.splitlines() if line.startswith("junction: ")]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (
            ["--set", "kernels.lease_timeout=-1"],
            "junction: invalid settings for plugin kernels: lease_timeout: "
            "Input should be greater than 0",
        ),
        (
            ["--set", "database_url=foo://x"],
            "junction: database_url must be sqlite+aiosqlite:// or postgresql+asyncpg://, "
            "not foo://x",
        ),
        (
            ["--set", "database_url=postgresql+asyncpg://ana:hunter2@db:port/junction"],
            "junction: database_url is not a database URL: <unparseable database URL>",
        ),
        (
            ["--set", "users.oidc_client_secrethunter2"],
            "junction: --set expects plugin.key=value; an argument of --set has no '='",
        ),
        (
            ["--disable", "termnals"],
            "junction: disable: unknown plugin 'termnals'; installed plugins: ",
        ),
    ],
    ids=["parsed", "unknown-database", "bad-port", "no-equals", "building"],
)
def test_a_bad_setting_on_the_command_line_is_one_line(
    tmp_path: Path, args: list[str], message: str
) -> None:
    result = junction(tmp_path, *args)
    assert result.returncode == 2, result.stderr
    assert "Traceback" not in result.stderr
    assert "hunter2" not in result.stderr  # a secret in the argument is never echoed
    [line] = result.stderr.splitlines()
    assert line.startswith(message)
    assert result.stdout == ""


def test_a_bad_value_in_the_config_file_is_one_line(tmp_path: Path) -> None:
    (tmp_path / "junction.toml").write_text('[kernels]\nlease_timeout = "soon"\nmax_kernels = 0\n')
    result = junction(tmp_path)
    assert result.returncode == 2, result.stderr
    assert "Traceback" not in result.stderr
    assert result.stderr.splitlines() == [
        "junction: invalid settings for plugin kernels: max_kernels: Input should be greater "
        "than or equal to 1; lease_timeout: Input should be a valid number, unable to parse "
        "string as a number"
    ]


def test_a_setting_a_plugin_refuses_as_it_starts_is_one_line(tmp_path: Path) -> None:
    # The hub plugin checks its scopes in its lifespan, once uvicorn runs the app.
    result = junction(tmp_path, "--profile", "hub")
    assert result.returncode == 2, result.stderr
    assert "Traceback" not in result.stderr
    assert "Waiting for application startup" in result.stderr  # it failed while starting
    assert errors(result.stderr) == [
        "junction: hub: no access scopes, so nobody could use this server; set "
        "JUPYTERHUB_OAUTH_ACCESS_SCOPES (the Hub sets it when it spawns this server) or "
        'hub.access_scopes, e.g. ["access:servers!user=ana"]'
    ]
