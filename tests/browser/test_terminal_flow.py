"""JupyterLab's terminal in a real chromium against a real Junction server.

The flow (``terminal_flow.mjs``, driven by playwright-core) opens ``/lab?token=...`` on a
full-profile server, clicks the Terminal tile of the launcher (shown only when the page
config says ``terminalsAvailable``), types ``echo $((6*7))`` and sees 42, then reloads the
page: JupyterLab reattaches to the running terminal, whose scrollback brings the 42 back.
Any browser console error, any HTTP status >= 400 seen by the browser, and any 4xx/5xx in the
server's access log fail the test; the terminal's shell must be gone after the server stops.

Needs what the JupyterLab flow needs (see ``test_lab_flow.py``; shared helpers in
``helpers.py``).
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import psutil
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
)

from junction.testing import ServerProcess

pytestmark = pytest.mark.browser


@pytest.fixture(scope="module")
def home(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """Root dir and Jupyter dirs of the server, away from the user's own."""
    with flow_home(tmp_path_factory, "terminal-flow") as path:
        yield path


@pytest.fixture(scope="module")
def flow(home: Path) -> tuple[Run, list[dict[str, str]], list[psutil.Process]]:
    """The terminal flow, run once; also the terminals listed and the server's shells."""
    ARTIFACTS.mkdir(exist_ok=True)
    # bash without the machine's rc files, whose start-up (a pyenv rehash, say) is not ours.
    args = full_profile_args(home / "root")
    args += ["--set", 'terminals.shell_command=["/bin/bash", "--norc", "--noprofile", "-i"]']
    server = ServerProcess(args, log_path=home / "server-terminal.log").start()
    try:
        summary = node_summary("terminal_flow.mjs", flow_env(server))
        listed = httpx.get(
            server.url + "api/terminals", headers={"Authorization": f"token {server.token}"}
        ).json()
        shells = psutil.Process(server.pid).children(recursive=True)
    finally:
        server.stop()
    return Run(summary=summary, server_log=server.log()), listed, shells


def test_a_terminal_runs_42_and_survives_a_reload(
    flow: tuple[Run, list[dict[str, str]], list[psutil.Process]],
) -> None:
    run, listed, _ = flow
    assert_ran_cleanly(run)
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
