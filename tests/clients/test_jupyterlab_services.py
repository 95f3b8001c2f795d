"""JupyterLab's own client library, ``@jupyterlab/services`` under Node, against Junction.

``node/client.mjs`` lists kernel specs, starts a kernel, runs ``print(6*7)``, interrupts a
``time.sleep(30)``, restarts, shuts down, then creates, lists, patches (rename and kernel
change) and deletes a session, and prints a JSON summary as its last stdout line.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path
from typing import Any

import httpx
import pytest

from junction.testing import ServerProcess

pytestmark = pytest.mark.e2e

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


def _tool(name: str) -> str:
    path = shutil.which(name)
    assert path is not None, f"{name} is needed for the client tests; install Node.js 20+"
    return path


@pytest.fixture(scope="module")
def node() -> str:
    """The node binary, with the client project's packages installed (``npm ci`` once)."""
    node = _tool("node")
    version = subprocess.run([node, "--version"], capture_output=True, text=True, check=True)
    major = int(version.stdout.strip().lstrip("v").split(".")[0])
    assert major >= 20, f"Node.js 20+ is needed, found {version.stdout.strip()}"
    if not (NODE_PROJECT / "node_modules" / "@jupyterlab" / "services").is_dir():
        subprocess.run(
            [_tool("npm"), "ci", "--no-audit", "--no-fund"],
            cwd=NODE_PROJECT,
            check=True,
            timeout=110,
        )
    return node


def _run_client(node: str, server: ServerProcess) -> dict[str, Any]:
    env = {**os.environ, "JUNCTION_URL": server.url, "JUNCTION_TOKEN": server.token}
    done = subprocess.run(
        [node, "client.mjs"],
        cwd=NODE_PROJECT,
        env=env,
        capture_output=True,
        text=True,
        timeout=100,
    )
    lines = done.stdout.strip().splitlines()
    assert lines, f"client printed nothing; stderr:\n{done.stderr}\nserver log:\n{server.log()}"
    summary: dict[str, Any] = json.loads(lines[-1])
    summary["exit_code"] = done.returncode
    return summary


def test_jupyterlab_services_drives_kernels_and_sessions(
    node: str, junction_gateway: ServerProcess, tmp_path: Path
) -> None:
    (tmp_path / "root" / "clients").mkdir()

    summary = _run_client(node, junction_gateway)

    report = json.dumps(summary, indent=2)
    assert summary["ok"] is True, f"{report}\nserver log:\n{junction_gateway.log()}"
    assert summary["exit_code"] == 0
    steps = summary["steps"]
    assert list(steps) == STEPS
    assert all(step["ok"] for step in steps.values()), report
    assert steps["kernelspecs"]["default"] in steps["kernelspecs"]["names"]
    assert steps["start_kernel"]["language"] == "python"
    assert steps["execute"]["stdout"] == "42\n"
    assert steps["interrupt"]["error"] == "KeyboardInterrupt"
    assert steps["restart"]["stdout"] == "False 42\n"
    # The kernel knows its document: JPY_SESSION_NAME reached ipykernel as __session__.
    assert steps["session_create"]["session_name"] == str(tmp_path / "root/clients/node.ipynb")
    assert steps["session_patch"]["path"] == "clients/renamed.ipynb"
    assert steps["session_patch"]["name"] == "renamed.ipynb"

    headers = {"Authorization": f"token {junction_gateway.token}"}
    with httpx.Client(base_url=junction_gateway.url, headers=headers) as client:
        assert client.get("api/kernels").json() == []
        assert client.get("api/sessions").json() == []
