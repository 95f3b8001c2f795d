"""What the browser tests share: tool checks, Jupyter dirs, servers, running node flows.

Each flow is a ``*.mjs`` script in this directory driven by playwright-core; it prints one
JSON summary line to stdout, which :func:`node_summary` parses. What a test tolerates (known
console errors, expected statuses) stays in the test and is passed in as arguments.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from junction.testing import ServerProcess

HERE = Path(__file__).parent
REPO = HERE.parent.parent
ARTIFACTS = REPO / "test-artifacts"
CHROMIUM = Path(os.environ.get("CHROMIUM", "/usr/bin/chromium"))
FLOW_TIMEOUT = 100.0

# uvicorn's access log: `127.0.0.1:5 - "GET /path?q HTTP/1.1" 404`; WebSocket refusals alike.
_ACCESS = re.compile(
    r'"(?P<request>(?:[A-Z]+ \S+ HTTP/[\d.]+)|(?:WebSocket \S+))" (?P<status>\d{3})'
)


@dataclass
class Run:
    """One flow phase: what the browser saw and what the server logged meanwhile."""

    summary: dict[str, Any]
    server_log: str


def check_tools(
    *,
    modules: Iterable[str] = ("matplotlib", "ipywidgets"),
    node: int = 18,
    needs: Mapping[Path, str] | None = None,
) -> None:
    """Fail (never skip) with the fix when a tool the flow needs is missing.

    ``modules`` are Python modules the flow's notebooks import; ``needs`` maps further
    paths that must exist to the message saying how to get them.
    """
    problems = []
    if not CHROMIUM.exists():
        problems.append(f"{CHROMIUM} is missing: apt-get install -y chromium")
    if shutil.which("node") is None:
        problems.append(f"node is missing: install Node.js {node} or later")
    if not (HERE / "node_modules" / "playwright-core").is_dir():
        problems.append(f"playwright-core is missing: cd {HERE} && npm ci")
    for module in modules:
        if subprocess.run([sys.executable, "-c", f"import {module}"], check=False).returncode:
            problems.append(f"{module} is missing: pip install {module}")
    for path, message in (needs or {}).items():
        if not path.exists():
            problems.append(message)
    if problems:
        pytest.fail("browser test prerequisites:\n  " + "\n  ".join(problems))


@contextmanager
def jupyter_dirs(path: Path) -> Iterator[Path]:
    """Point the Jupyter and IPython dirs under ``path``, away from the user's own."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("JUPYTER_CONFIG_DIR", str(path / "jupyter-config"))
        patch.setenv("JUPYTER_DATA_DIR", str(path / "jupyter-data"))
        patch.setenv("JUPYTER_RUNTIME_DIR", str(path / "jupyter-runtime"))
        patch.setenv("IPYTHONDIR", str(path / "ipython"))
        patch.delenv("JUPYTERLAB_DIR", raising=False)
        yield path


@contextmanager
def flow_home(factory: pytest.TempPathFactory, name: str) -> Iterator[Path]:
    """After :func:`check_tools`: a fresh dir with an empty ``root`` and its own Jupyter dirs."""
    check_tools()
    path = factory.mktemp(name)
    (path / "root").mkdir()
    with jupyter_dirs(path):
        yield path


def one_cell_notebook(cell_id: str, source: str) -> dict[str, Any]:
    """A notebook (nbformat 4.5, Python kernel) with one code cell, not yet run."""
    cell: dict[str, Any] = {
        "cell_type": "code",
        "id": cell_id,
        "source": source,
        "metadata": {},
        "outputs": [],
        "execution_count": None,
    }
    kernelspec = {"name": "python3", "display_name": "Python 3 (ipykernel)"}
    return {
        "cells": [cell],
        "metadata": {"kernelspec": kernelspec},
        "nbformat": 4,
        "nbformat_minor": 5,
    }


def full_profile_args(root: Path) -> list[str]:
    """Command line of a full-profile Junction on a free loopback port, access log at info."""
    args = ["--port", "0", "--ip", "127.0.0.1", "--profile", "full", "--log-level", "info"]
    return [*args, "--root-dir", str(root)]


def flow_env(server: ServerProcess, **extra: str) -> dict[str, str]:
    """The environment a flow script reads: the server, chromium, artifacts, step timeout."""
    return {
        **os.environ,
        "JUNCTION_URL": server.url,
        "JUNCTION_TOKEN": server.token,
        "ARTIFACTS_DIR": str(ARTIFACTS),
        "CHROMIUM": str(CHROMIUM),
        "STEP_TIMEOUT_MS": "30000",
        **extra,
    }


def node_summary(
    script: str,
    env: Mapping[str, str],
    *args: str,
    timeout: float = FLOW_TIMEOUT,
) -> dict[str, Any]:
    """Run ``node <script> <args>`` here; returns the last JSON line it printed."""
    done = subprocess.run(
        ["node", script, *args],
        cwd=HERE,
        env=dict(env),
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    lines = [line for line in done.stdout.splitlines() if line.startswith("{")]
    if not lines:
        pytest.fail(f"{script} printed no summary (exit {done.returncode}):\n{done.stderr}")
    summary: dict[str, Any] = json.loads(lines[-1])
    return summary


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
    phase = summary.get("phase")
    parts = []
    if summary["console"]:
        parts.append("console errors:\n  " + "\n  ".join(summary["console"]))
    if summary["bad"]:
        parts.append("failed requests:\n  " + "\n  ".join(summary["bad"]))
        parts.extend(summary.get("failures", []))
    errors = http_errors(run.server_log)
    if errors:
        parts.append("server answered:\n  " + "\n  ".join(errors))
    parts.append(f"artifacts in {ARTIFACTS}")
    # Last, so that a log that keeps only the tail of a long message still shows it.
    steps = ", ".join(step["name"] for step in summary.get("steps", []))
    parts.append(f"steps done: {steps or 'none'}")
    parts.append(f"{f'phase {phase}' if phase else 'flow'} failed: {summary['error']}")
    return "\n".join(parts)


def failed_endpoints(summary: dict[str, Any]) -> list[dict[str, Any]]:
    """The endpoints of a summary that answered 400 or more, or failed, at least once."""
    return [
        entry
        for entry in summary["endpoints"]
        if any(not isinstance(status, int) or status >= 400 for status in entry["statuses"])
    ]


def unexpected_console_errors(run: Run, known: Iterable[str] = ()) -> list[str]:
    """The console errors of the flow, minus those containing one of ``known``."""
    known = tuple(known)
    return [error for error in run.summary["console"] if not any(k in error for k in known)]


def assert_ran_cleanly(run: Run, *, known_console_errors: Iterable[str] = ()) -> None:
    """No error, no failed request, no console error but the known ones, no 4xx/5xx logged."""
    assert run.summary["error"] is None, describe(run)
    assert run.summary["bad"] == [], describe(run)
    assert unexpected_console_errors(run, known_console_errors) == [], describe(run)
    assert http_errors(run.server_log) == [], describe(run)
