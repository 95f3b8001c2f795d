"""JupyterLab's terminal in a real chromium against a real Junction server.

The flow (``terminal_flow.mjs``, driven by playwright-core) opens ``/lab?token=...`` on a
full-profile server, clicks the Terminal tile of the launcher (shown only when the page
config says ``terminalsAvailable``), types ``echo $((6*7))`` and sees 42, then reloads the
page: JupyterLab reattaches to the running terminal, whose scrollback brings the 42 back.
Any browser console error, any HTTP status >= 400 seen by the browser, and any 4xx/5xx in the
server's access log fail the test; the terminal's shell must be gone after the server stops.

Needs what the JupyterLab flow needs (see ``test_lab_flow.py``, whose helpers this reuses).
"""

from __future__ import annotations

import json
import os
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import psutil
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
    path = tmp_path_factory.mktemp("terminal-flow")
    (path / "root").mkdir()
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("JUPYTER_CONFIG_DIR", str(path / "jupyter-config"))
        patch.setenv("JUPYTER_DATA_DIR", str(path / "jupyter-data"))
        patch.setenv("JUPYTER_RUNTIME_DIR", str(path / "jupyter-runtime"))
        patch.setenv("IPYTHONDIR", str(path / "ipython"))
        patch.delenv("JUPYTERLAB_DIR", raising=False)
        yield path


@pytest.fixture(scope="module")
def flow(home: Path) -> tuple[Run, list[dict[str, str]], list[psutil.Process]]:
    """The terminal flow, run once; also the terminals listed and the server's shells."""
    ARTIFACTS.mkdir(exist_ok=True)
    args = ["--port", "0", "--ip", "127.0.0.1", "--profile", "full", "--log-level", "info"]
    args += ["--root-dir", str(home / "root")]
    server = ServerProcess(args, log_path=home / "server-terminal.log").start()
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
            ["node", "terminal_flow.mjs"],
            cwd=HERE,
            env=env,
            capture_output=True,
            text=True,
            timeout=FLOW_TIMEOUT,
            check=False,
        )
        listed = httpx.get(
            server.url + "api/terminals", headers={"Authorization": f"token {server.token}"}
        ).json()
        shells = psutil.Process(server.pid).children(recursive=True)
    finally:
        server.stop()
    lines = [line for line in done.stdout.splitlines() if line.startswith("{")]
    if not lines:
        pytest.fail(
            f"terminal_flow.mjs printed no summary (exit {done.returncode}):\n{done.stderr}"
        )
    return Run(summary=json.loads(lines[-1]), server_log=server.log()), listed, shells


def test_a_terminal_runs_42_and_survives_a_reload(
    flow: tuple[Run, list[dict[str, str]], list[psutil.Process]],
) -> None:
    run, listed, _ = flow
    assert run.summary["error"] is None, describe(run)
    assert run.summary["bad"] == [], describe(run)
    assert run.summary["console"] == [], describe(run)
    assert http_errors(run.server_log) == [], describe(run)
    names = [step["name"] for step in run.summary["steps"]]
    assert names[-1] == "reload and see the scrollback with 42", describe(run)
    assert [terminal["name"] for terminal in listed] == ["1"]  # the reload reattached


def test_jupyterlab_called_the_terminals_api_and_websocket(
    flow: tuple[Run, list[dict[str, str]], list[psutil.Process]],
) -> None:
    run, _, _ = flow
    called = {f"{e['method']} {e['path'].split('?')[0]}" for e in run.summary["endpoints"]}
    assert "POST /api/terminals" in called
    assert "GET /api/terminals" in called
    assert "WS /terminals/websocket/1" in called


def test_the_shell_is_gone_after_the_server_stops(
    flow: tuple[Run, list[dict[str, str]], list[psutil.Process]],
) -> None:
    _, _, shells = flow
    assert shells
    deadline = time.monotonic() + 10
    while not all(_dead(process) for process in shells):
        assert time.monotonic() < deadline, [p for p in shells if not _dead(p)]
        time.sleep(0.05)


def _dead(process: psutil.Process) -> bool:
    """Exited: gone, or a zombie its new parent has not reaped yet."""
    try:
        return process.status() == psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return True
