"""The ``junction`` command's subcommands."""

from __future__ import annotations

import json

import pytest

from junction.cli import main, settings_help


def test_config_show_prints_effective_settings_with_secrets_masked(
    capsys: pytest.CaptureFixture[str],
) -> None:
    status = main(
        [
            "--profile",
            "none",
            "--token",
            "s3cret-token",
            "--port",
            "9123",
            "--set",
            "allow_origin=https://a.example",
            "config",
            "show",
        ]
    )
    out = capsys.readouterr().out
    assert status == 0
    shown = json.loads(out)
    assert shown["token"] == "********"
    assert shown["port"] == 9123
    assert shown["allow_origin"] == "https://a.example"
    assert "s3cret-token" not in out


def test_plugins_prints_the_start_order(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--profile", "none", "plugins"]) == 0
    out = capsys.readouterr().out
    assert "profile: none" in out
    assert "start order:" in out


def test_unknown_plugin_is_a_clear_error(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--profile", "none", "--enable", "nosuch", "plugins"]) == 2
    assert "unknown plugin 'nosuch'; installed plugins:" in capsys.readouterr().err


def test_bad_setting_is_a_clear_error(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--set", "port=abc", "config", "show"]) == 2
    assert "invalid settings: port:" in capsys.readouterr().err


def test_help_documents_every_server_setting() -> None:
    from junction.settings import ServerSettings

    text = settings_help()
    for name in ServerSettings.model_fields:
        if name != "plugins":
            assert f"  {name}" in text
