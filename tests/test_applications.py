"""Which applications a set of plugins serves, and what each one misses."""

from __future__ import annotations

import pytest

from junction.applications import APPLICATIONS, coverage
from junction.cli import main
from junction.registry import PROFILES, enabled_names


def by_name(profile: str, enabled: list[str]) -> dict[str, str]:
    """``junction plugins``' line for every application."""
    return {c.name: c.describe() for c in coverage(profile, enabled)}


def test_full_profile_without_terminals_serves_jupyterlab_without_its_terminal() -> None:
    lines = by_name("full", enabled_names("full", [], ["terminals"]))
    assert lines["jupyterlab"].startswith("jupyterlab: ready; without terminals (")
    assert lines["notebook"].startswith("notebook: ready")


def test_full_profile_with_terminals_serves_jupyterlab_fully() -> None:
    assert by_name("full", enabled_names("full", ["terminals"], []))["jupyterlab"] == (
        "jupyterlab: ready"
    )


def test_disabling_a_needed_plugin_is_reported_as_missing() -> None:
    lines = by_name("full", enabled_names("full", [], ["sessions"]))
    assert lines["jupyterlab"] == "jupyterlab: missing sessions"
    assert lines["gateway-client"] == "gateway-client: missing sessions"


def test_gateway_profile_serves_gateway_clients_but_not_the_ui() -> None:
    result = coverage("gateway", enabled_names("gateway", [], []))
    assert result[0].name == "gateway-client"
    assert result[0].intended
    assert result[0].served
    lab = next(c for c in result if c.name == "jupyterlab")
    assert not lab.intended
    assert lab.missing == ("contents", "lab", "frontend")


def test_every_application_names_known_profiles() -> None:
    for name, app in APPLICATIONS.items():
        assert set(app.profiles) <= set(PROFILES), name
        assert not set(app.extras) & set(app.needs), name


def test_every_profile_serves_the_applications_it_is_meant_for() -> None:
    for name, app in APPLICATIONS.items():
        for profile in app.profiles:
            enabled = enabled_names(profile, [], [])
            assert not [p for p in app.needs if p not in enabled], (name, profile)


def test_plugins_command_says_what_the_profile_lacks(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--profile", "gateway", "--disable", "sessions", "plugins"]) == 0
    out = capsys.readouterr().out
    assert "applications (* = what profile gateway is for):" in out
    assert "  * gateway-client: missing sessions\n" in out
    assert "      enable sessions to serve gateway-client\n" in out
