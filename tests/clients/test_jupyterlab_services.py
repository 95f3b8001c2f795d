"""JupyterLab's own client library, ``@jupyterlab/services`` under Node, against Junction.

``node/client.mjs`` lists kernel specs, starts a kernel, runs ``print(6*7)``, interrupts a
``time.sleep(30)``, restarts, shuts down, then creates, lists, patches (rename and kernel
change) and deletes a session, and prints a JSON summary as its last stdout line.
"""

from __future__ import annotations

import json
from pathlib import Path

import httpx
import pytest

from junction.testing import ServerProcess

from .node_client import STEPS, run_client

pytestmark = pytest.mark.e2e


# JupyterLab's clients list kernels and sessions (they poll both): the gateway profile's
# defaults allow it, so the server runs with no extra options.


def test_jupyterlab_services_drives_kernels_and_sessions(
    node: str, junction_gateway: ServerProcess, tmp_path: Path
) -> None:
    (tmp_path / "root" / "clients").mkdir()

    summary = run_client(node, junction_gateway.url, junction_gateway.token)

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
