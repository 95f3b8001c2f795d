"""Junction under a real JupyterHub, in chromium (``jupyterhub_flow.mjs``).

ana logs into the Hub, starts her server from its home page, lands in Junction's JupyterLab
at /user/ana/lab through the Hub's OAuth, runs a cell and sees 42, reloads, and stops the
server from the Hub's control panel: no kernel process is left. bob, another Hub user, is
refused ana's server.

Needs Debian's ``chromium``, Node.js, ``npm ci`` here and in ``tests/jupyterhub``.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import psutil
import pytest

HERE = Path(__file__).parent
sys.path.insert(0, str(HERE.parent / "jupyterhub"))

from helpers import ARTIFACTS, CHROMIUM, check_tools, node_summary  # noqa: E402
from hubrun import PASSWORD, PROXY, running_hub, wait_for  # noqa: E402

pytestmark = [pytest.mark.browser, pytest.mark.timeout(400)]


def _kernels_under(tmp: Path) -> list[psutil.Process]:
    found = []
    for proc in psutil.process_iter(["cmdline"]):
        cmdline = proc.info["cmdline"] or []
        if any("ipykernel" in part for part in cmdline) and any(str(tmp) in p for p in cmdline):
            found.append(proc)
    return found


def test_lab_under_the_hub(tmp_path: Path) -> None:
    """Log in, spawn, run a cell, reload, another user refused, stop: no kernel left."""
    check_tools(
        modules=(),
        node=20,
        needs={PROXY: f"configurable-http-proxy is missing: cd {PROXY.parents[2]} && npm ci"},
    )
    with running_hub(tmp_path) as hub:
        env = {
            **os.environ,
            "HUB_URL": hub.url,
            "PASSWORD": PASSWORD,
            "ARTIFACTS_DIR": str(ARTIFACTS),
            "CHROMIUM": str(CHROMIUM),
        }
        summary = node_summary("jupyterhub_flow.mjs", env, timeout=360)
        assert summary["ok"], f"{summary['error']}\n--- hub log ---\n{hub.log_tail(60)}"
        assert summary["landed"].startswith("/user/ana/lab")
        assert summary["output"] == "42"
        assert summary["kernels"] >= 1
        assert summary["bob"]["status"] == 403, summary["bob"]
        assert summary["bob"]["lab"] == 0
        assert summary["stopped"] is True
        wait_for(
            lambda: "" not in hub.user("ana")["servers"],
            timeout=60,
            what="the Hub to record the server as stopped",
        )
        wait_for(
            lambda: not _kernels_under(tmp_path),
            timeout=30,
            what="every kernel to be gone after the Hub stopped the server",
        )
