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
from collections.abc import Iterator
from pathlib import Path

import pytest
from helpers import (
    ARTIFACTS,
    Run,
    assert_ran_cleanly,
    describe,
    flow_env,
    flow_home,
    full_profile_args,
    node_summary,
    one_cell_notebook,
)

from junction.testing import ServerProcess

pytestmark = pytest.mark.browser

FLOW_TIMEOUT = 150.0
SOURCE = "import time\nfor i in range(20):\n    print(i, flush=True)\n    time.sleep(0.5)"
LINES = [str(i) for i in range(20)]


@pytest.fixture(scope="module")
def home(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """Root dir (holding ``stream.ipynb``) and Jupyter dirs, away from the user's own."""
    notebook = one_cell_notebook("stream", SOURCE)
    with flow_home(tmp_path_factory, "collaboration-closed-tabs") as path:
        (path / "root" / "stream.ipynb").write_text(json.dumps(notebook))
        yield path


@pytest.fixture(scope="module")
def flow(home: Path) -> Run:
    """The closed-tabs flow, run once."""
    ARTIFACTS.mkdir(exist_ok=True)
    args = full_profile_args(home / "root")
    args += ["--set", f"database_url=sqlite+aiosqlite:///{home / 'junction.db'}"]
    server = ServerProcess(args, log_path=home / "server-closed-tabs.log").start()
    try:
        summary = node_summary(
            "collaboration_closed_tabs.mjs", flow_env(server), timeout=FLOW_TIMEOUT
        )
    finally:
        server.stop()
    return Run(summary=summary, server_log=server.log())


def test_the_flow_runs_cleanly(flow: Run) -> None:
    # JupyterLab's own complaint when Ctrl+S lands while an earlier save of the document is
    # still waiting for the room's answer; the last test checks what the file holds.
    assert_ran_cleanly(flow, known_console_errors=["Saving already in progress"])


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
