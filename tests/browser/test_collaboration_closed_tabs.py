"""A cell run on the server keeps writing its output after every tab showing it closed.

The flow (``collaboration_closed_tabs.mjs``) opens ``/lab/tree/stream.ipynb`` in chromium on
a ``full``-profile server (collaboration and server-side execution on), runs a cell printing
a line every 0.5 s for 10 s, and closes the browser context about 2 s in. Once the kernel is
idle again, a new context opens the notebook: the cell shows all 20 lines; after a save the
file read through the Contents API holds them as one stream output. Any browser console
error, any HTTP status >= 400 seen by the browser, and any 4xx/5xx in the server's access log
fail the test.

Needs Debian's ``chromium``, Node.js and ``npm ci`` in this directory.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from junction.testing import ServerProcess

pytestmark = pytest.mark.browser

HERE = Path(__file__).parent
ARTIFACTS = HERE.parent.parent / "test-artifacts"
CHROMIUM = Path(os.environ.get("CHROMIUM", "/usr/bin/chromium"))
FLOW_TIMEOUT = 150.0
SOURCE = "import time\nfor i in range(20):\n    print(i, flush=True)\n    time.sleep(0.5)"
LINES = [str(i) for i in range(20)]

# uvicorn's access log: `127.0.0.1:5 - "GET /path?q HTTP/1.1" 404`; WebSocket refusals alike.
_ACCESS = re.compile(
    r'"(?P<request>(?:[A-Z]+ \S+ HTTP/[\d.]+)|(?:WebSocket \S+))" (?P<status>\d{3})'
)


@dataclass
class Run:
    """The flow's summary and what the server logged meanwhile."""

    summary: dict[str, Any]
    server_log: str


def http_errors(log: str) -> list[str]:
    """Access log lines answering 400 or more."""
    return [
        f"{match['request']} {match['status']}"
        for match in _ACCESS.finditer(log)
        if int(match["status"]) >= 400
    ]


def describe(run: Run) -> str:
    """A failure message: the error, console errors, failed requests, server errors."""
    summary = run.summary
    parts = [f"flow failed: {summary['error']}"]
    if summary["console"]:
        parts.append("console errors:\n  " + "\n  ".join(summary["console"]))
    if summary["bad"]:
        parts.append("failed requests:\n  " + "\n  ".join(summary["bad"]))
    errors = http_errors(run.server_log)
    if errors:
        parts.append("server answered:\n  " + "\n  ".join(errors))
    parts.append(f"steps: {summary['steps']}")
    parts.append(f"artifacts in {ARTIFACTS}")
    return "\n".join(parts)


@pytest.fixture(scope="module")
def home(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """Root dir and Jupyter dirs of the server, away from the user's own."""
    problems = []
    if not CHROMIUM.exists():
        problems.append(f"{CHROMIUM} is missing: apt-get install -y chromium")
    if shutil.which("node") is None:
        problems.append("node is missing: install Node.js 18 or later")
    if not (HERE / "node_modules" / "playwright-core").is_dir():
        problems.append(f"playwright-core is missing: cd {HERE} && npm ci")
    if problems:
        pytest.fail("browser test prerequisites:\n  " + "\n  ".join(problems))
    path = tmp_path_factory.mktemp("collaboration-closed-tabs")
    root = path / "root"
    root.mkdir()
    cell: dict[str, Any] = {
        "cell_type": "code",
        "id": "stream",
        "source": SOURCE,
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
    (root / "stream.ipynb").write_text(json.dumps(notebook))
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("JUPYTER_CONFIG_DIR", str(path / "jupyter-config"))
        patch.setenv("JUPYTER_DATA_DIR", str(path / "jupyter-data"))
        patch.setenv("JUPYTER_RUNTIME_DIR", str(path / "jupyter-runtime"))
        patch.setenv("IPYTHONDIR", str(path / "ipython"))
        patch.delenv("JUPYTERLAB_DIR", raising=False)
        yield path


@pytest.fixture(scope="module")
def flow(home: Path) -> Run:
    """The closed-tabs flow, run once."""
    ARTIFACTS.mkdir(exist_ok=True)
    args = ["--port", "0", "--ip", "127.0.0.1", "--profile", "full", "--log-level", "info"]
    args += ["--root-dir", str(home / "root")]
    args += ["--set", f"database_url=sqlite+aiosqlite:///{home / 'junction.db'}"]
    # Panel's JupyterLab extension (installed with the apps test extra) asks a Panel server
    # for a preview of every open notebook; there is none here, and this test is not about it.
    args += ["--set", 'frontend.disabled_extensions=["@pyviz/jupyterlab_pyviz"]']
    server = ServerProcess(args, log_path=home / "server-closed-tabs.log").start()
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
            ["node", "collaboration_closed_tabs.mjs"],
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
            f"collaboration_closed_tabs.mjs printed no summary ({done.returncode}):\n{done.stderr}"
        )
    return Run(summary=json.loads(lines[-1]), server_log=server.log())


def test_the_flow_runs_cleanly(flow: Run) -> None:
    assert flow.summary["error"] is None, describe(flow)
    assert flow.summary["console"] == [], describe(flow)
    assert flow.summary["bad"] == [], describe(flow)
    assert http_errors(flow.server_log) == [], describe(flow)


def test_the_tabs_closed_while_the_cell_ran(flow: Run) -> None:
    at_close = flow.summary["linesAtClose"]
    assert at_close is not None, describe(flow)
    assert "4" in at_close, describe(flow)
    assert len(at_close) < len(LINES), at_close
    assert flow.summary["stateAtClose"] == "busy", describe(flow)


def test_the_reopened_notebook_shows_all_20_lines(flow: Run) -> None:
    assert flow.summary["shownLines"] == LINES, describe(flow)


def test_the_saved_file_holds_all_20_lines(flow: Run) -> None:
    outputs = flow.summary["savedOutputs"]
    assert outputs == [
        {"output_type": "stream", "name": "stdout", "text": "".join(f"{i}\n" for i in LINES)}
    ], describe(flow)
