"""Running ``node/client.mjs`` (``@jupyterlab/services``) and reading its summary."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path
from typing import Any

NODE_PROJECT = Path(__file__).parent / "node"
STEPS = [
    "kernelspecs",
    "start_kernel",
    "execute",
    "interrupt",
    "restart",
    "shutdown_kernel",
    "session_create",
    "session_list",
    "session_patch",
    "session_delete",
]


def tool(name: str) -> str:
    """The path of a command the client tests need; fails (never skips) when it is missing."""
    path = shutil.which(name)
    assert path is not None, f"{name} is needed for the client tests; install Node.js 20+"
    return path


def ensure_node_project() -> str:
    """The node binary, with the client project's packages installed (``npm ci`` once)."""
    node = tool("node")
    version = subprocess.run([node, "--version"], capture_output=True, text=True, check=True)
    major = int(version.stdout.strip().lstrip("v").split(".")[0])
    assert major >= 20, f"Node.js 20+ is needed, found {version.stdout.strip()}"
    if not (NODE_PROJECT / "node_modules" / "@jupyterlab" / "services").is_dir():
        subprocess.run(
            [tool("npm"), "ci", "--no-audit", "--no-fund"],
            cwd=NODE_PROJECT,
            check=True,
            timeout=110,
        )
    return node


def run_client(node: str, url: str, token: str) -> dict[str, Any]:
    """Run the client flow against ``url``; return its JSON summary plus ``exit_code``."""
    env = {**os.environ, "JUNCTION_URL": url, "JUNCTION_TOKEN": token}
    done = subprocess.run(
        [node, "client.mjs"],
        cwd=NODE_PROJECT,
        env=env,
        capture_output=True,
        text=True,
        timeout=100,
    )
    lines = done.stdout.strip().splitlines()
    assert lines, f"client printed nothing; stderr:\n{done.stderr}"
    summary: dict[str, Any] = json.loads(lines[-1])
    summary["exit_code"] = done.returncode
    return summary
