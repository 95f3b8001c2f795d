"""Two Junction processes behind real nginx, seen by clients as one JupyterLab server.

Process A runs the ``ui`` profile (contents, frontend, lab), process B the ``kernels`` profile
(kernelspecs, kernels, sessions); they share a token, a cookie secret and a root directory.
nginx uses the configuration ``junction deploy nginx`` writes.
"""

from __future__ import annotations

import json
import shutil
import signal
import socket
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from junction.deploy import NginxLayout, nginx_config
from junction.testing import TEST_TOKEN, ServerProcess, free_port

from .node_client import STEPS, run_client

pytestmark = pytest.mark.e2e

COOKIE_SECRET = "shared-cookie-secret-for-the-layout"


@dataclass
class Layout:
    """The running layout: both processes, nginx, and the URL clients use."""

    ui: ServerProcess
    kernels: ServerProcess
    nginx: subprocess.Popen[bytes]
    url: str
    root: Path


def _wait_for_port(port: int, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1):
                return
        except OSError:
            time.sleep(0.05)
    raise AssertionError(f"nothing listens on port {port} after {timeout} s")


def _host_port(process: ServerProcess) -> str:
    return process.url.removeprefix("http://").rstrip("/")


@pytest.fixture
def layout(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Layout]:
    nginx_bin = shutil.which("nginx") or "/usr/sbin/nginx"
    assert Path(nginx_bin).exists(), "nginx is required (apt-get install nginx-light)"
    monkeypatch.setenv("JUNCTION_COOKIE_SECRET", COOKIE_SECRET)
    root = tmp_path / "root"
    (root / "clients").mkdir(parents=True)
    (root / "hello.txt").write_text("files come from the ui process\n")
    common = ["--port", "0", "--root-dir", str(root), "--log-level", "debug"]
    ui = ServerProcess(["--profile", "ui", *common], log_path=tmp_path / "ui.log").start()
    kernels = ServerProcess(
        ["--profile", "kernels", *common], log_path=tmp_path / "kernels.log"
    ).start()
    port = free_port()
    conf_dir = tmp_path / "nginx"
    conf_dir.mkdir()
    config = nginx_config(
        NginxLayout(listen=f"127.0.0.1:{port}", ui=_host_port(ui), kernels=_host_port(kernels)),
        standalone=conf_dir,
    )
    (conf_dir / "nginx.conf").write_text(config)
    nginx = subprocess.Popen(
        [
            nginx_bin,
            "-p",
            str(conf_dir),
            "-c",
            str(conf_dir / "nginx.conf"),
            "-e",
            str(conf_dir / "error.log"),
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        _wait_for_port(port)
        yield Layout(ui, kernels, nginx, f"http://127.0.0.1:{port}/", root)
    finally:
        nginx.send_signal(signal.SIGQUIT)
        try:
            nginx.wait(10)
        except subprocess.TimeoutExpired:
            nginx.kill()
        ui.stop()
        kernels.stop()


def test_a_notebook_cell_runs_through_nginx_and_files_survive_losing_kernels(
    layout: Layout, node: str
) -> None:
    auth = {"Authorization": f"token {TEST_TOKEN}"}
    with httpx.Client(base_url=layout.url, headers=auth, timeout=30) as client:
        # The UI process serves the page; the kernel specs it shows come from B via nginx.
        page = client.get("lab", headers={"Accept": "text/html"})
        assert page.status_code == 200
        assert "jupyter-config-data" in page.text
        specs = client.get("api/kernelspecs")
        assert specs.status_code == 200
        assert "python3" in specs.json()["kernelspecs"]
        assert client.get("api/contents/hello.txt").json()["content"] == (
            "files come from the ui process\n"
        )

    summary = run_client(node, layout.url, TEST_TOKEN)
    report = json.dumps(summary, indent=2)
    assert summary["ok"] is True, (
        f"{report}\nui:\n{layout.ui.log()}\nkernels:\n{layout.kernels.log()}"
    )
    assert list(summary["steps"]) == STEPS
    assert summary["steps"]["execute"]["stdout"] == "42\n"
    # The kernel ran in B, and B's kernels are the only ones: A has no kernels API at all.
    assert "POST /api/kernels" in layout.kernels.log()
    assert "POST /api/kernels" not in layout.ui.log()

    layout.kernels.stop()
    with httpx.Client(base_url=layout.url, headers=auth, timeout=30) as client:
        down = client.get("api/kernels")
        assert down.status_code == 503
        assert down.json() == {
            "message": "The kernels service is unavailable; try again shortly",
            "reason": "Service Unavailable",
        }
        assert client.get("api/sessions").status_code == 503
        assert client.get("api/contents/hello.txt").status_code == 200
        assert client.get("lab", headers={"Accept": "text/html"}).status_code == 200
        saved = client.put(
            "api/contents/after.txt",
            json={"type": "file", "format": "text", "content": "still saving"},
        )
        assert saved.status_code == 201
    assert (layout.root / "after.txt").read_text() == "still saving"
