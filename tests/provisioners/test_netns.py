"""A kernel launched through Junction by the netns provisioner: its own network namespace,
reached by the server over a veth pair as a kernel on another host would be.

Needs root (``CAP_NET_ADMIN``) and iproute2, as CI has.
"""

from __future__ import annotations

import json
import os
import shutil
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from websockets.sync.client import ClientConnection, connect

from junction.provisioners.netns import namespaces
from junction.testing import TEST_TOKEN, ServerProcess, execute_request

pytestmark = pytest.mark.e2e

SPEC = "python3-netns"


@pytest.fixture
def server(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[ServerProcess]:
    """A ``kernels`` server that knows a kernel spec using the netns provisioner."""
    assert os.geteuid() == 0, "the netns provisioner needs root (CAP_NET_ADMIN)"
    assert shutil.which("ip"), "the netns provisioner needs iproute2 (apt-get install iproute2)"
    spec_dir = tmp_path / "jupyter" / "kernels" / SPEC
    spec_dir.mkdir(parents=True)
    spec = {
        "argv": [sys.executable, "-m", "ipykernel_launcher", "-f", "{connection_file}"],
        "display_name": "Python 3 (own network)",
        "language": "python",
        "metadata": {"kernel_provisioner": {"provisioner_name": "junction-netns-provisioner"}},
    }
    (spec_dir / "kernel.json").write_text(json.dumps(spec))
    monkeypatch.setenv("JUPYTER_PATH", str(tmp_path / "jupyter"))
    root = tmp_path / "root"
    root.mkdir()
    args = ["--profile", "kernels", "--port", "0", "--root-dir", str(root)]
    with ServerProcess(args, log_path=tmp_path / "server.log") as process:
        yield process


def _execute(socket: ClientConnection, code: str) -> str:
    """Run ``code``; return its stdout (fails on an error reply)."""
    msg_id, request = execute_request(code)
    socket.send(json.dumps(request))
    stdout = ""
    replied = idle = False
    deadline = time.monotonic() + 60
    # The reply (shell) may overtake the output (iopub): wait for both it and idle.
    while time.monotonic() < deadline and not (replied and idle):
        message: dict[str, Any] = json.loads(socket.recv(timeout=60))
        if message["parent_header"].get("msg_id") != msg_id:
            continue
        kind = message["header"]["msg_type"]
        if kind == "stream" and message["content"]["name"] == "stdout":
            stdout += message["content"]["text"]
        elif kind == "execute_reply":
            assert message["content"]["status"] == "ok", message["content"]
            replied = True
        elif kind == "status":
            idle = message["content"]["execution_state"] == "idle"
    if not (replied and idle):
        raise AssertionError("no execute_reply and idle status within 60 s")
    return stdout


def _interfaces(proc_net_dev: str) -> set[str]:
    return {line.split(":")[0].strip() for line in proc_net_dev.splitlines()[2:] if ":" in line}


def test_a_kernel_runs_in_its_own_network_namespace(server: ServerProcess) -> None:
    auth = {"Authorization": f"token {TEST_TOKEN}"}
    with httpx.Client(base_url=server.url, headers=auth, timeout=60) as client:
        assert SPEC in client.get("api/kernelspecs").json()["kernelspecs"]
        started = client.post("api/kernels", json={"name": SPEC})
        assert started.status_code == 201, f"{started.text}\n{server.log()}"
        kernel_id = started.json()["id"]
        try:
            assert f"junction-{kernel_id}" in namespaces()
            ws_url = server.url.replace("http://", "ws://")
            with connect(
                f"{ws_url}api/kernels/{kernel_id}/channels",
                additional_headers=auth,
                open_timeout=30,
            ) as socket:
                seen = _interfaces(_execute(socket, "print(open('/proc/net/dev').read())"))
                assert "lo" in seen
                (link,) = seen - {"lo"}
                assert link.startswith("jxk")
                # The host's interfaces are not there: the kernel is on a host of its own.
                host = _interfaces(Path("/proc/net/dev").read_text())
                assert not (host - {"lo"}) & seen
                assert _execute(socket, "print(6 * 7)") == "42\n"
        finally:
            assert client.delete(f"api/kernels/{kernel_id}").status_code == 204
        deadline = time.monotonic() + 30
        while f"junction-{kernel_id}" in namespaces():
            assert time.monotonic() < deadline, "the kernel's namespace outlived it"
            time.sleep(0.05)
