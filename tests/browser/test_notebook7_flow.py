"""Notebook 7 in a real chromium against a real Junction server.

The flow (``notebook7_flow.mjs``, driven by playwright-core) runs against a full-profile
server started with ``--default-url /tree``: it opens ``/?token=...`` and must land on
Notebook 7's file browser, opens a notebook from it (Notebook 7 opens it in a new tab), runs
``print(6*7)``, sees 42 and saves. Any browser console error in any tab, any HTTP status
>= 400 seen by the browser, and any 4xx/5xx in the server's access log fail the test.
Artifacts (failure screenshots, the endpoint list, a screenshot of the notebook) go to
``test-artifacts/``.

Notebook 7.6 itself logs a few errors on its pages (:data:`NOTEBOOK_OWN_ERRORS`); the same
flow against ``jupyter notebook`` (jupyter_server 2.21) logs them identically, with the same
requests and answers, so they are not counted. Any other console error fails the test.

Needs what the JupyterLab flow needs (see ``test_lab_flow.py``; shared helpers in
``helpers.py``) and the ``notebook`` package.
"""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from helpers import (
    ARTIFACTS,
    Run,
    assert_ran_cleanly,
    failed_endpoints,
    flow_env,
    flow_home,
    full_profile_args,
    node_summary,
)

from junction.testing import ServerProcess

pytestmark = pytest.mark.browser

NOTEBOOK_OWN_ERRORS = (
    # The keyboard shortcuts plugin reacts to a settings change before its own settings are
    # loaded (the tree and notebook pages load shortcuts lazily).
    "TypeError: Cannot read properties of undefined (reading 'schema')",
    # A notebook settings handler runs on the tree page, where there is no notebook.
    "Cannot read properties of null (reading 'updateRenderOption')",
    # With jupyter-collaboration's UI installed: its timeline plugin needs JupyterLab's status
    # bar, which Notebook 7 does not have (resolved in the browser, whatever the server).
    "Plugin '@jupyter/docprovider-extension:statusBarTimeline' failed to activate",
)
"""Errors Notebook 7.6's own bundle logs on jupyter_server as well; matched by substring."""


@pytest.fixture(scope="module")
def home(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """Root dir and Jupyter dirs of the server, away from the user's own."""
    installed = subprocess.run([sys.executable, "-c", "import notebook"], check=False)
    if installed.returncode:
        pytest.fail("Notebook 7 is missing: pip install 'notebook>=7.2,<8'")
    with flow_home(tmp_path_factory, "notebook7-flow") as path:
        yield path


@pytest.fixture(scope="module")
def flow_run(home: Path) -> Run:
    """The Notebook 7 flow against a server whose ``/`` leads to ``/tree``, run once."""
    ARTIFACTS.mkdir(exist_ok=True)
    args = [*full_profile_args(home / "root"), "--default-url", "/tree"]
    server = ServerProcess(args, log_path=home / "server-notebook7.log").start()
    try:
        summary = node_summary("notebook7_flow.mjs", flow_env(server))
    finally:
        server.stop()
    return Run(summary=summary, server_log=server.log())


def test_notebook_7_flow_runs_cleanly_in_chromium(flow_run: Run) -> None:
    assert_ran_cleanly(flow_run, known_console_errors=NOTEBOOK_OWN_ERRORS)
    names = [step["name"] for step in flow_run.summary["steps"]]
    assert "run print(6*7) and see 42" in names
    assert "save and find the output through the REST API" in names


def test_notebook_7_called_its_pages_and_jupyterlabs_apis(flow_run: Run) -> None:
    endpoints = flow_run.summary["endpoints"]
    called = {f"{e['method']} {e['path'].split('?')[0]}" for e in endpoints}
    (ARTIFACTS / "notebook7-endpoints.md").write_text(
        "\n".join(sorted(called)) + "\n", encoding="utf-8"
    )
    for needed in (
        "GET /",
        "GET /tree",
        "GET /notebooks/flow.ipynb",
        "GET /lab/api/settings",
        "GET /api/contents/flow.ipynb",
        "PUT /api/contents/flow.ipynb",
        "POST /api/sessions",
    ):
        assert needed in called, f"Notebook 7 never called {needed}"
    assert any(path.startswith("GET /static/notebook/main.") for path in called)
    assert any(path.startswith("WS /api/kernels/") for path in called)
    assert failed_endpoints(flow_run.summary) == []
