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
from collections.abc import Iterator
from pathlib import Path

import pytest
from helpers import (
    ARTIFACTS,
    Run,
    assert_ran_cleanly,
    flow_env,
    flow_home,
    full_profile_args,
    node_summary,
    one_cell_notebook,
)

from junction.testing import ServerProcess

pytestmark = pytest.mark.browser


@pytest.fixture(scope="module")
def home(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """Root dir and Jupyter dirs of the server, away from the user's own."""
    notebook = one_cell_notebook("first", "a = 1")
    with flow_home(tmp_path_factory, "collaboration-flow") as path:
        (path / "root" / "shared.ipynb").write_text(json.dumps(notebook))
        yield path


@pytest.fixture(scope="module")
def flow(home: Path) -> Run:
    """The two-person flow, run once."""
    ARTIFACTS.mkdir(exist_ok=True)
    args = [*full_profile_args(home / "root"), "--enable", "collaboration"]
    args += ["--set", f"database_url=sqlite+aiosqlite:///{home / 'junction.db'}"]
    # Panel's JupyterLab extension (installed with the apps test extra) asks a Panel server
    # for a preview of every open notebook; there is none here, and this test is not about it.
    args += ["--set", 'frontend.disabled_extensions=["@pyviz/jupyterlab_pyviz"]']
    server = ServerProcess(args, log_path=home / "server-collaboration.log").start()
    try:
        summary = node_summary("collaboration_flow.mjs", flow_env(server))
    finally:
        server.stop()
    return Run(summary=summary, server_log=server.log())


def test_two_people_edit_run_and_save_one_notebook(flow: Run) -> None:
    assert_ran_cleanly(flow)
    names = [step["name"] for step in flow.summary["steps"]]
    assert names[-1] == "alice saves; the file holds both edits and the output"


def test_the_notebook_went_through_the_collaboration_routes(flow: Run) -> None:
    called = {f"{e['method']} {e['path'].split(':')[0]}" for e in flow.summary["endpoints"]}
    assert "PUT /api/collaboration/session/shared.ipynb" in called
    assert "WS /api/collaboration/room/json" in called
