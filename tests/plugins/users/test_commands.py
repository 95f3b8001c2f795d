"""``junction users ...`` against a real database file, as an administrator runs it."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from junction.plugins.users.credentials import looks_like_token


def _junction(db: Path, *words: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [
            sys.executable,
            "-m",
            "junction.cli",
            "--set",
            f"database_url=sqlite+aiosqlite:///{db}",
            "users",
            *words,
        ],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


@pytest.mark.timeout(120)
def test_users_commands_add_list_token_disable_revoke(tmp_path: Path) -> None:
    db = tmp_path / "junction.db"
    added = _junction(db, "add", "ana", "--admin", "--group", "staff", "--group", "lab")
    assert added.returncode == 0, added.stderr
    assert "ana" in added.stdout
    assert _junction(db, "add", "bob").returncode == 0
    twice = _junction(db, "add", "bob")
    assert twice.returncode == 1
    assert "exists already" in twice.stderr
    listed = _junction(db, "list").stdout.splitlines()
    assert listed[0].startswith("ana")
    assert "staff,lab" in listed[0]
    assert "admin" in listed[0]
    assert listed[1].startswith("bob")
    token = _junction(db, "token", "bob", "--note", "ci")
    assert token.returncode == 0
    assert looks_like_token(token.stdout.splitlines()[-1])
    assert _junction(db, "disable", "bob").returncode == 0
    assert "disabled" in _junction(db, "list").stdout.splitlines()[1]
    revoked = _junction(db, "revoke", "bob")
    assert revoked.stdout.strip() == "revoked 0 sessions and 1 tokens of bob"
    missing = _junction(db, "revoke", "nobody")
    assert missing.returncode == 1
    assert "No such user: nobody" in missing.stderr


def test_config_show_masks_the_openid_client_secret(capsys: pytest.CaptureFixture[str]) -> None:
    from junction.cli import main

    assert main(["config", "show", "--set", "users.oidc_client_secret=very-secret"]) == 0
    shown = capsys.readouterr().out
    assert "very-secret" not in shown
    assert '"oidc_client_secret": "********"' in shown
