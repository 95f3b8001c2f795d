"""JupyterLab in a real chromium against a real Junction server.

The flow (``flow.mjs``, driven by playwright-core) opens ``/lab?token=...``, creates a
notebook, runs ``print(6*7)``, a matplotlib plot and an ipywidgets slider, saves, reloads,
switches the theme; then the server restarts and the notebook and the theme must still be
there. The ``full`` profile has the collaboration plugin: the notebook is a shared document
whose cells the server runs (it writes the outputs and, with ``recordTiming``, which
jupyterlab-execute-time turns on, the timings); Ctrl+S saves through the room, so the save
step waits for the room's answer and the cleared dirty mark, then reads the file back.
Any browser console error, any HTTP status >= 400 seen by the browser, and any 4xx/5xx in
the server's access log fail the test. Artifacts (failure screenshots, the endpoint list)
go to ``test-artifacts/``, with a screenshot of the notebook; ``UPDATE_DOCS_SCREENSHOT=1``
writes that screenshot to ``docs/screenshot-lab.png`` instead.

Needs Debian's ``chromium`` (``apt-get install chromium``), Node.js, ``npm ci`` in this
directory, and matplotlib, ipywidgets and jupyterlab-execute-time in the environment.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from helpers import (
    ARTIFACTS,
    REPO,
    Run,
    describe,
    failed_endpoints,
    flow_env,
    flow_home,
    full_profile_args,
    http_errors,
    node_summary,
)

from junction.testing import ServerProcess

pytestmark = pytest.mark.browser

# The documentation screenshot is refreshed only on request, so test runs leave the tree clean.
SCREENSHOT = (
    REPO / "docs" / "screenshot-lab.png"
    if os.environ.get("UPDATE_DOCS_SCREENSHOT") == "1"
    else ARTIFACTS / "screenshot-lab.png"
)


def start_server(home: Path, log_name: str) -> ServerProcess:
    """A full-profile Junction on a free port over ``home/root``, access log at info."""
    args = full_profile_args(home / "root")
    # Both phases' servers share one database (the per-test data dir would differ).
    args += ["--set", f"database_url=sqlite+aiosqlite:///{home / 'junction.db'}"]
    return ServerProcess(args, log_path=home / log_name).start()


def run_flow(server: ServerProcess, phase: str, *, screenshot: Path | None = None) -> Run:
    """Run ``node flow.mjs <phase>`` against ``server``; returns its JSON summary."""
    extra = {} if screenshot is None else {"SCREENSHOT": str(screenshot)}
    summary = node_summary("flow.mjs", flow_env(server, **extra), phase)
    return Run(summary=summary, server_log=server.log())


@pytest.fixture(scope="module")
def home(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """Root dir and Jupyter dirs shared by both phases (the restart must see the first's)."""
    with flow_home(tmp_path_factory, "lab-flow") as path:
        yield path  # JUPYTER_DATA_DIR holds junction.db


@pytest.fixture(scope="module")
def main_run(home: Path) -> Run:
    """The main flow, run once for the tests below."""
    ARTIFACTS.mkdir(exist_ok=True)
    server = start_server(home, "server-main.log")
    try:
        run = run_flow(server, "main", screenshot=SCREENSHOT)
    finally:
        server.stop()
    return run


def test_notebook_flow_runs_cleanly_in_chromium(main_run: Run) -> None:
    assert main_run.summary["ok"], describe(main_run)
    assert http_errors(main_run.server_log) == [], describe(main_run)
    names = [step["name"] for step in main_run.summary["steps"]]
    assert "run print(6*7) and see 42" in names
    assert "switch to the dark theme" in names


def test_every_endpoint_the_ui_called_answered(main_run: Run) -> None:
    endpoints = main_run.summary["endpoints"]
    table = ["| method | path | status | calls |", "|---|---|---|---|"]
    for entry in endpoints:
        statuses = ", ".join(str(s) for s in entry["statuses"])
        table.append(f"| {entry['method']} | `{entry['path']}` | {statuses} | {entry['count']} |")
    (ARTIFACTS / "endpoints.md").write_text("\n".join(table) + "\n")
    called = {f"{e['method']} {e['path'].split('?')[0]}" for e in endpoints}
    for needed in (
        "GET /lab",
        "GET /lab/api/settings",
        "PUT /lab/api/settings/@jupyterlab/apputils-extension:themes",
        "GET /lab/api/workspaces/default",
        "GET /api/contents/Untitled.ipynb",
        "PUT /api/collaboration/session/Untitled.ipynb",
        "WS /api/collaboration/room/JupyterLab:globalAwareness",
        "POST /api/sessions",
        "WS /api/events/subscribe",
    ):
        assert needed in called, f"the UI never called {needed}"
    # The notebook is a shared document: edited in its room, saved by the server, its cells
    # run by the server (no PUT /api/contents for it).
    assert any(path.startswith("WS /api/collaboration/room/json:notebook:") for path in called)
    assert any(re.fullmatch(r"POST /api/kernels/[\w-]+/execute", path) for path in called)
    assert any(path.startswith("WS /api/kernels/") for path in called)
    assert any(path.startswith("GET /lab/extensions/jupyterlab-execute-time/") for path in called)
    assert failed_endpoints(main_run.summary) == []


def test_notebook_and_theme_survive_a_server_restart(main_run: Run, home: Path) -> None:
    assert main_run.summary["ok"], "the main flow failed; see the test above"
    server = start_server(home, "server-restarted.log")
    try:
        run = run_flow(server, "restarted")
    finally:
        server.stop()
    assert run.summary["ok"], describe(run)
    assert http_errors(run.server_log) == [], describe(run)
