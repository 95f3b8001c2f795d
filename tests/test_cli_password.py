"""junction password: the hash lands in the config file, which only its owner can read."""

from __future__ import annotations

import getpass
import os
import stat
import tomllib
from pathlib import Path

import pytest

from junction.auth.passwords import verify_password
from junction.cli import main


def test_password_is_stored_hashed_in_a_private_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    config = tmp_path / "junction.toml"
    config.write_text("port = 9000\n")
    config.chmod(0o644)
    monkeypatch.setattr(getpass, "getpass", lambda prompt="": "correct horse")
    previous = os.umask(0o022)
    try:
        assert main(["password", "--config", str(config)]) == 0
    finally:
        os.umask(previous)
    assert stat.S_IMODE(config.stat().st_mode) == 0o600
    stored = tomllib.loads(config.read_text())
    assert stored["port"] == 9000
    assert "correct horse" not in config.read_text()
    assert verify_password(stored["password"], "correct horse")
