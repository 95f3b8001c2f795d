"""junction-singleuser: the Hub's environment becomes settings; a Hub that is down stops the
start with the reason and a non-zero status."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from junction.plugins.hub.singleuser import hub_arguments
from junction.testing import free_port


def test_hub_environment_becomes_arguments() -> None:
    """Bind URL, base URL, root dir and default URL come from JUPYTERHUB_*."""
    args = hub_arguments(
        {
            "JUPYTERHUB_SERVICE_URL": "http://0.0.0.0:51234/user/ana/",
            "JUPYTERHUB_SERVICE_PREFIX": "/user/ana/",
            "JUPYTERHUB_ROOT_DIR": "~/work",
            "JUPYTERHUB_DEFAULT_URL": "lab",
        }
    )
    assert args[:3] == ["--profile", "hub", "--no-browser"]
    pairs = dict(zip(args[3::2], args[4::2], strict=True))
    assert pairs == {
        "--ip": "0.0.0.0",
        "--port": "51234",
        "--base-url": "/user/ana/",
        "--root-dir": os.path.expanduser("~/work"),
        "--default-url": "/lab",
    }


def test_minimal_environment() -> None:
    """Without optional variables only the plugin set is chosen."""
    assert hub_arguments({}) == ["--profile", "hub", "--no-browser"]


def test_without_a_hub_token_the_command_refuses(tmp_path: Path) -> None:
    """Started by hand, the command says it is for the Hub and exits with 2."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("JUPYTERHUB_", "JPY_"))}
    done = subprocess.run(
        [sys.executable, "-m", "junction.plugins.hub.singleuser"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 2
    assert "JUPYTERHUB_API_TOKEN is not set" in done.stderr


def test_hub_down_stops_the_start(tmp_path: Path) -> None:
    """A Hub that does not answer: a few tries, then a non-zero exit naming the Hub URL."""
    dead = free_port()
    port = free_port()
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith(("JUPYTERHUB_", "JPY_"))},
        "JUPYTERHUB_API_TOKEN": "test-token",
        "JUPYTERHUB_API_URL": f"http://127.0.0.1:{dead}/hub/api",
        "JUPYTERHUB_SERVICE_URL": f"http://127.0.0.1:{port}/user/ana/",
        "JUPYTERHUB_SERVICE_PREFIX": "/user/ana/",
        "JUPYTERHUB_OAUTH_ACCESS_SCOPES": '["access:servers!server=ana/"]',
        "JUPYTERHUB_USER": "ana",
        "JUPYTER_RUNTIME_DIR": str(tmp_path / "runtime"),
        "JUPYTER_DATA_DIR": str(tmp_path / "data"),
        "JUNCTION_HUB__CONNECT_TRIES": "2",
    }
    done = subprocess.run(
        [sys.executable, "-m", "junction.plugins.hub.singleuser", "--root-dir", str(tmp_path)],
        env=env,
        capture_output=True,
        text=True,
        timeout=90,
        check=False,
    )
    assert done.returncode != 0
    assert f"http://127.0.0.1:{dead}/hub/api did not answer after 2 tries" in done.stderr
