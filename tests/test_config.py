"""Settings layering: defaults < TOML file < environment < command line."""

from __future__ import annotations

from pathlib import Path

import pytest

from junction.config import environment_layer, load_settings, parse_assignment
from junction.errors import ConfigError


def test_each_layer_overrides_the_one_below(tmp_path: Path) -> None:
    config = tmp_path / "junction.toml"
    config.write_text('port = 9001\nip = "0.0.0.0"\nbase_url = "from-file"\n')
    settings = load_settings(
        config_file=config,
        environ={"JUNCTION_PORT": "9002", "JUNCTION_BASE_URL": "from-env"},
        overrides={"port": 9003},
    )
    assert settings.port == 9003
    assert settings.base_url == "/from-env/"
    assert settings.ip == "0.0.0.0"


def test_defaults_apply_when_no_layer_sets_a_value(tmp_path: Path) -> None:
    config = tmp_path / "empty.toml"
    config.write_text("")
    settings = load_settings(config_file=config, environ={})
    assert (settings.port, settings.ip, settings.base_url, settings.profile) == (
        8888,
        "localhost",
        "/",
        "full",
    )


def test_plugin_sections_come_from_tables_env_and_set(tmp_path: Path) -> None:
    config = tmp_path / "junction.toml"
    config.write_text("[kernels]\ncull_idle_timeout = 600\ncull_busy = true\n")
    settings = load_settings(
        config_file=config,
        environ={"JUNCTION_KERNELS__CULL_INTERVAL": "30"},
        overrides=parse_assignment("kernels.cull_busy=false"),
    )
    assert settings.plugins["kernels"] == {
        "cull_idle_timeout": 600,
        "cull_interval": 30,
        "cull_busy": False,
    }


def test_environment_values_are_json_when_they_parse() -> None:
    layer = environment_layer(
        {"JUNCTION_NO_AUTH": "true", "JUNCTION_IP": "0.0.0.0", "OTHER": "x", "JUNCTION_": "y"}
    )
    assert layer == {"no_auth": True, "ip": "0.0.0.0"}


def test_comma_separated_lists_are_accepted_from_the_environment() -> None:
    settings = load_settings(environ={"JUNCTION_ENABLE": "kernels, sessions"})
    assert settings.enable == ["kernels", "sessions"]


def test_unknown_top_level_setting_is_refused(tmp_path: Path) -> None:
    config = tmp_path / "junction.toml"
    config.write_text("prot = 9000\n")
    with pytest.raises(ConfigError, match="unknown setting 'prot'"):
        load_settings(config_file=config, environ={})


def test_invalid_value_names_the_setting() -> None:
    with pytest.raises(ConfigError, match="port: Input should be less than or equal to 65535"):
        load_settings(environ={"JUNCTION_PORT": "70000"})


def test_missing_config_file_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="does not exist"):
        load_settings(config_file=tmp_path / "nope.toml", environ={})


def test_broken_toml_is_an_error(tmp_path: Path) -> None:
    config = tmp_path / "junction.toml"
    config.write_text("port = \n")
    with pytest.raises(ConfigError, match="not valid TOML"):
        load_settings(config_file=config, environ={})


def test_plain_text_password_is_refused() -> None:
    with pytest.raises(ConfigError, match="argon2 hash"):
        load_settings(environ={}, overrides={"password": "hunter2"})


@pytest.mark.parametrize("text", ["nokey", "=1", "a..b=1"])
def test_malformed_set_assignment_is_refused(text: str) -> None:
    with pytest.raises(ConfigError, match="--set expects"):
        parse_assignment(text)


def test_base_url_is_normalised_with_slashes() -> None:
    assert load_settings(environ={}, overrides={"base_url": "user/ana"}).base_url == "/user/ana/"


@pytest.mark.parametrize("typed", ["12345678901234567890", "1e5", "1.50", "007"])
def test_a_secret_of_digits_is_kept_as_typed(typed: str) -> None:
    """JSON parsing of ``--set`` and environment values must not turn a token made of
    digits into a number (refused: not a string) or rewrite it (``1e5`` to ``100000.0``)."""
    from_set = load_settings(environ={}, overrides=parse_assignment(f"token={typed}"))
    from_env = load_settings(environ={"JUNCTION_TOKEN": typed})
    for settings in (from_set, from_env):
        assert settings.token is not None
        assert settings.token.get_secret_value() == typed


def test_numbers_typed_loosely_still_read_as_numbers() -> None:
    settings = load_settings(
        environ={"JUNCTION_PORT": "9000"}, overrides=parse_assignment("kernels.lease_timeout=1e1")
    )
    assert settings.port == 9000
    assert settings.plugins["kernels"] == {"lease_timeout": "1e1"}  # read by the plugin as 10.0


@pytest.mark.parametrize("text", ["token1234", "users.oidc_client_secrethunter2"])
def test_an_assignment_without_equals_is_not_echoed(text: str) -> None:
    with pytest.raises(ConfigError) as refused:
        parse_assignment(text)
    assert text not in str(refused.value)
