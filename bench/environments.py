"""Virtual environments of the comparison servers, and the kernelspec every target shares.

Each comparison server gets its own environment under ``build/bench/`` so its dependencies
never mix with Junction's. An environment is created only when missing (a marker file records
what was installed, so a changed requirement list reinstalls). All servers start the same
kernel: a kernelspec named ``junction-bench`` that runs ipykernel from Junction's own ``.venv``,
found through ``JUPYTER_PATH``.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

__all__ = [
    "BUILD_DIR",
    "KERNEL_NAME",
    "REPO",
    "Environment",
    "comparison_environments",
    "ensure",
    "kernelspec_path",
    "version_of",
]

REPO = Path(__file__).resolve().parent.parent
BUILD_DIR = REPO / "build" / "bench"
KERNEL_NAME = "junction-bench"


@dataclass(frozen=True)
class Environment:
    """A virtual environment holding one comparison server."""

    name: str
    requirements: tuple[str, ...]

    @property
    def path(self) -> Path:
        """Where the environment lives."""
        return BUILD_DIR / f"venv-{self.name}"

    @property
    def python(self) -> Path:
        """The environment's interpreter."""
        return self.path / "bin" / "python"

    def bin(self, name: str) -> Path:
        """A console script installed in the environment."""
        return self.path / "bin" / name


def comparison_environments() -> list[Environment]:
    """The environments of the servers Junction is compared with."""
    return [
        # jupyter-collaboration serves the collaboration group's rooms; the other groups
        # start jupyter_server with its extensions off (``JupyterServerKind.collaboration``).
        # jupyter-server-proxy is the apps group's comparison (``JupyterServerKind.server_proxy``).
        Environment(
            "jupyter_server",
            (
                "jupyter_server>=2.21",
                "ipykernel",
                "jupyter-collaboration>=4",
                "jupyter-server-proxy>=4.4",
            ),
        ),
        # jupyverse's base install brings kernels, contents, terminals, lab APIs; the auth extra
        # adds the default token authentication. The JupyterLab frontend is not needed.
        Environment("jupyverse", ("jupyverse[auth]>=0.14", "ipykernel")),
    ]


def _marker(env: Environment) -> Path:
    return env.path / ".bench-installed"


def ensure(env: Environment, log: Path) -> float:
    """Create ``env`` if it is missing or outdated; returns the seconds spent installing."""
    marker = _marker(env)
    wanted = json.dumps(list(env.requirements))
    if env.python.exists() and marker.exists() and marker.read_text() == wanted:
        return 0.0
    started = time.monotonic()
    print(f"  installing {env.name} into {env.path.relative_to(REPO)} ...", flush=True)
    with log.open("ab") as out:
        if not env.python.exists():
            subprocess.run(
                [sys.executable, "-m", "venv", "--clear", str(env.path)],
                check=True,
                stdout=out,
                stderr=subprocess.STDOUT,
            )
        subprocess.run(
            [str(env.python), "-m", "pip", "install", "--quiet", *env.requirements],
            check=True,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    marker.write_text(wanted)
    return time.monotonic() - started


def kernelspec_path(python: Path) -> Path:
    """Write the shared kernelspec (running ipykernel with ``python``); return its JUPYTER_PATH."""
    root = BUILD_DIR / "share" / "jupyter"
    spec_dir = root / "kernels" / KERNEL_NAME
    spec_dir.mkdir(parents=True, exist_ok=True)
    spec = {
        "argv": [str(python), "-m", "ipykernel_launcher", "-f", "{connection_file}"],
        "display_name": "Python 3 (bench)",
        "language": "python",
        "metadata": {"debugger": False},
    }
    (spec_dir / "kernel.json").write_text(json.dumps(spec, indent=1))
    return root


def version_of(python: Path, distribution: str) -> str:
    """The installed version of ``distribution`` in the environment of ``python``."""
    result = subprocess.run(
        [
            str(python),
            "-c",
            "import importlib.metadata as m, sys; print(m.version(sys.argv[1]))",
            distribution,
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    return result.stdout.strip() if result.returncode == 0 else "unknown"
