"""Real-time collaboration in a real chromium: two people, one notebook, one server.

The flow (``collaboration_flow.mjs``) opens ``/lab/tree/shared.ipynb`` in two browser
contexts on a server running the collaboration plugin: typing in one shows up in the other,
a cell run by one shows its output in both, and the file saved from one holds everything.
Any browser console error, any HTTP status >= 400 seen by the browsers, and any 4xx/5xx in
the server's access log fail the test.

Needs what the JupyterLab flow needs (see ``test_lab_flow.py``, whose helpers this reuses).
"""

from __future__ import annotations

import json
import os
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from test_lab_flow import (
    ARTIFACTS,
    CHROMIUM,
    FLOW_TIMEOUT,
    Run,
    _check_tools,
    describe,
    http_errors,
)

from junction.testing import ServerProcess

pytestmark = pytest.mark.browser

HERE = Path(__file__).parent


@pytest.fixture(scope="module")
def home(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """Root dir and Jupyter dirs of the server, away from the user's own."""
    _check_tools()
    path = tmp_path_factory.mktemp("collaboration-flow")
    root = path / "root"
    root.mkdir()
    cell: dict[str, Any] = {
        "cell_type": "code",
        "id": "first",
        "source": "a = 1",
        "metadata": {},
        "outputs": [],
        "execution_count": None,
    }
    notebook = {
        "cells": [cell],
        "metadata": {
            "kernelspec": {"name": "python3", "display_name": "Python 3 (ipykernel)"},
        },
        "nbformat": 4,
        "nbformat_minor": 5,
    }
    (root / "shared.ipynb").write_text(json.dumps(notebook))
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("JUPYTER_CONFIG_DIR", str(path / "jupyter-config"))
        patch.setenv("JUPYTER_DATA_DIR", str(path / "jupyter-data"))
        patch.setenv("JUPYTER_RUNTIME_DIR", str(path / "jupyter-runtime"))
        patch.setenv("IPYTHONDIR", str(path / "ipython"))
        patch.delenv("JUPYTERLAB_DIR", raising=False)
        yield path


@pytest.fixture(scope="module")
def flow(home: Path) -> Run:
    """The two-person flow, run once."""
    ARTIFACTS.mkdir(exist_ok=True)
    args = ["--port", "0", "--ip", "127.0.0.1", "--profile", "full", "--log-level", "info"]
    args += ["--enable", "collaboration", "--root-dir", str(home / "root")]
    args += ["--set", f"database_url=sqlite+aiosqlite:///{home / 'junction.db'}"]
    # Panel's JupyterLab extension (installed with the apps test extra) asks a Panel server
    # for a preview of every open notebook; there is none here, and this test is not about it.
    args += ["--set", 'frontend.disabled_extensions=["@pyviz/jupyterlab_pyviz"]']
    server = ServerProcess(args, log_path=home / "server-collaboration.log").start()
    try:
        env = {
            **os.environ,
            "JUNCTION_URL": server.url,
            "JUNCTION_TOKEN": server.token,
            "ARTIFACTS_DIR": str(ARTIFACTS),
            "CHROMIUM": str(CHROMIUM),
            "STEP_TIMEOUT_MS": "30000",
        }
        done = subprocess.run(
            ["node", "collaboration_flow.mjs"],
            cwd=HERE,
            env=env,
            capture_output=True,
            text=True,
            timeout=FLOW_TIMEOUT,
            check=False,
        )
    finally:
        server.stop()
    lines = [line for line in done.stdout.splitlines() if line.startswith("{")]
    if not lines:
        pytest.fail(
            f"collaboration_flow.mjs printed no summary ({done.returncode}):\n{done.stderr}"
        )
    return Run(summary=json.loads(lines[-1]), server_log=server.log())


def test_two_people_edit_run_and_save_one_notebook(flow: Run) -> None:
    assert flow.summary["error"] is None, describe(flow)
    assert flow.summary["bad"] == [], describe(flow)
    assert flow.summary["console"] == [], describe(flow)
    assert http_errors(flow.server_log) == [], describe(flow)
    names = [step["name"] for step in flow.summary["steps"]]
    assert names[-1] == "alice saves; the file holds both edits and the output"


def test_the_notebook_went_through_the_collaboration_routes(flow: Run) -> None:
    called = {f"{e['method']} {e['path'].split(':')[0]}" for e in flow.summary["endpoints"]}
    assert "PUT /api/collaboration/session/shared.ipynb" in called
    assert "WS /api/collaboration/room/json" in called
