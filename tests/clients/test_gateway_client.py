"""A stock ``jupyter server --gateway-url`` using Junction as its kernel gateway.

The Jupyter server keeps sessions itself and forwards kernel specs, kernels and the kernel
WebSocket to Junction, authenticating with ``GatewayClient.auth_token``. Junction runs with
the gateway profile's defaults, which list kernels to the token holder: the Jupyter server's
``/api/status`` and ``/api/kernels`` (which JupyterLab polls) list the gateway's kernels,
and fail with 403 when an operator turns listing off (the second variant). The test runs a
notebook cell through the Jupyter server's own REST API and WebSocket and checks that the
specs came from Junction and that the kernel ran in Junction. Junction alone sees a kernel
spec named ``junction-probe`` (through ``JUPYTER_PATH``), so finding it on the Jupyter server
proves where its specs come from.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import anyio
import httpx
import pytest
import websockets

from junction.testing import ServerProcess, free_port

pytestmark = [pytest.mark.e2e, pytest.mark.anyio]

JUPYTER_TOKEN = "jupyter-server-token"
PROBE_SPEC = "junction-probe"


@pytest.fixture(params=[True, False], ids=["defaults", "listing-off"])
def listing(request: pytest.FixtureRequest) -> bool:
    """Whether Junction lists kernels and sessions: on is the gateway profile's default."""
    return bool(request.param)


@pytest.fixture
def gateway_args(listing: bool) -> list[str]:
    """The gateway profile as it comes, or with both listings turned off."""
    if listing:
        return []
    return ["--set", "kernels.list_kernels=false", "--set", "sessions.list_sessions=false"]


@pytest.fixture
def gateway_env(tmp_path: Path) -> dict[str, str]:
    """Give Junction (only) an extra kernel spec, ``junction-probe``."""
    spec_dir = tmp_path / "junction-data" / "kernels" / PROBE_SPEC
    spec_dir.mkdir(parents=True)
    spec = {
        "argv": [sys.executable, "-m", "ipykernel_launcher", "-f", "{connection_file}"],
        "display_name": "Junction probe",
        "language": "python",
    }
    (spec_dir / "kernel.json").write_text(json.dumps(spec))
    return {"JUPYTER_PATH": str(tmp_path / "junction-data")}


class JupyterServer:
    """A ``jupyter server`` subprocess pointed at a gateway, isolated from the user's config."""

    def __init__(self, gateway: ServerProcess, tmp_path: Path) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}/"
        self.log_path = tmp_path / "jupyter-server.log"
        home = tmp_path / "jupyter-home"
        root = tmp_path / "jupyter-root"
        root.mkdir()
        self.env = {
            **os.environ,
            "JUPYTER_CONFIG_DIR": str(home / "config"),
            "JUPYTER_DATA_DIR": str(home / "data"),
            "JUPYTER_RUNTIME_DIR": str(home / "runtime"),
            "JUPYTER_PLATFORM_DIRS": "1",
        }
        self.env.pop("JUPYTER_PATH", None)
        self.command = [
            sys.executable,
            "-m",
            "jupyter_server",
            f"--gateway-url={gateway.url.rstrip('/')}",
            f"--GatewayClient.auth_token={gateway.token}",
            f"--IdentityProvider.token={JUPYTER_TOKEN}",
            f"--port={self.port}",
            "--ip=127.0.0.1",
            "--port-retries=0",
            "--no-browser",
            "--allow-root",
            f"--ServerApp.root_dir={root}",
        ]
        self.process: subprocess.Popen[bytes] | None = None

    def start(self, timeout: float = 60.0) -> None:
        """Start it and wait until its ``/api`` answers."""
        with self.log_path.open("wb") as log:
            self.process = subprocess.Popen(
                self.command, stdout=log, stderr=subprocess.STDOUT, env=self.env
            )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            assert self.process.poll() is None, f"jupyter server exited:\n{self.log()}"
            try:
                if httpx.get(self.url + "api", timeout=2).status_code == 200:
                    return
            except httpx.TransportError:
                pass
            time.sleep(0.1)
        raise AssertionError(f"jupyter server did not start:\n{self.log()}")

    def stop(self) -> None:
        """Stop it (SIGTERM, then SIGKILL after 20 s)."""
        assert self.process is not None
        self.process.terminate()
        try:
            self.process.wait(20)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()

    def log(self) -> str:
        """What it wrote so far."""
        return self.log_path.read_text(errors="replace")


@pytest.fixture
def jupyter_server(junction_gateway: ServerProcess, tmp_path: Path) -> Iterator[JupyterServer]:
    """A Jupyter server whose kernels live in the Junction gateway."""
    server = JupyterServer(junction_gateway, tmp_path)
    server.start()
    try:
        yield server
    finally:
        server.stop()


def _execute_request(code: str, session: str) -> dict[str, Any]:
    """A kernel ``execute_request`` in the legacy JSON WebSocket framing."""
    msg_id = uuid.uuid4().hex
    return {
        "channel": "shell",
        "header": {
            "msg_id": msg_id,
            "msg_type": "execute_request",
            "session": session,
            "username": "test",
            "version": "5.3",
            "date": "2026-01-01T00:00:00.000000Z",
        },
        "parent_header": {},
        "metadata": {},
        "content": {
            "code": code,
            "silent": False,
            "store_history": True,
            "user_expressions": {},
            "allow_stdin": False,
            "stop_on_error": True,
        },
        "buffers": [],
    }


async def _run_cell(ws_url: str, code: str) -> tuple[str, str]:
    """Run ``code`` over a kernel WebSocket; return (stdout, execute_reply status)."""
    session = uuid.uuid4().hex
    request = _execute_request(code, session)
    msg_id = request["header"]["msg_id"]
    stdout, status, idle = "", "", False
    async with websockets.connect(f"{ws_url}&session_id={session}") as ws:
        await ws.send(json.dumps(request))
        with anyio.fail_after(60):
            while not (status and idle):
                msg = json.loads(await ws.recv())
                if msg.get("parent_header", {}).get("msg_id") != msg_id:
                    continue
                kind = msg["header"]["msg_type"]
                if kind == "stream" and msg["content"]["name"] == "stdout":
                    stdout += msg["content"]["text"]
                elif kind == "execute_reply":
                    status = msg["content"]["status"]
                elif kind == "status" and msg["content"]["execution_state"] == "idle":
                    idle = True
    return stdout, status


async def test_jupyter_server_runs_a_cell_in_a_junction_kernel(
    junction_gateway: ServerProcess, jupyter_server: JupyterServer, listing: bool
) -> None:
    junction = httpx.AsyncClient(
        base_url=junction_gateway.url,
        headers={"Authorization": f"token {junction_gateway.token}"},
        timeout=60,
    )
    jupyter = httpx.AsyncClient(
        base_url=jupyter_server.url,
        headers={"Authorization": f"token {JUPYTER_TOKEN}"},
        timeout=60,
    )
    async with junction, jupyter:
        ours = (await junction.get("api/kernelspecs")).json()
        theirs = (await jupyter.get("api/kernelspecs")).json()
        assert PROBE_SPEC in ours["kernelspecs"]
        assert theirs["default"] == ours["default"]
        assert sorted(theirs["kernelspecs"]) == sorted(ours["kernelspecs"])
        probe = theirs["kernelspecs"][PROBE_SPEC]["spec"]
        assert probe == ours["kernelspecs"][PROBE_SPEC]["spec"]
        assert probe["display_name"] == "Junction probe"

        created = await jupyter.post(
            "api/sessions",
            json={
                "path": "gateway.ipynb",
                "type": "notebook",
                "name": "gateway.ipynb",
                "kernel": {"name": PROBE_SPEC},
            },
        )
        assert created.status_code == 201, created.text
        session = created.json()
        kernel_id = session["kernel"]["id"]
        in_junction = await junction.get(f"api/kernels/{kernel_id}")
        assert in_junction.json()["name"] == PROBE_SPEC
        # GatewayClient runs notebooks without listing; the Jupyter server's /api/status
        # and GET /api/kernels (which JupyterLab polls) list the gateway's kernels.
        listed_here = await junction.get("api/kernels")
        listed_there = await jupyter.get("api/kernels")
        server_status = await jupyter.get("api/status")
        sessions_here = await junction.get("api/sessions")
        if listing:
            assert [k["id"] for k in listed_here.json()] == [kernel_id]
            assert [k["id"] for k in listed_there.json()] == [kernel_id]
            assert server_status.status_code == 200, server_status.text
            assert server_status.json()["kernels"] == 1
            assert sessions_here.json() == []  # GatewayClient starts kernels, not sessions
        else:
            assert listed_here.status_code == 403, listed_here.text
            assert listed_there.status_code == 403, listed_there.text
            assert server_status.status_code == 403, server_status.text
            assert sessions_here.status_code == 403, sessions_here.text
        # Sessions stay in the Jupyter server.
        assert [s["id"] for s in (await jupyter.get("api/sessions")).json()] == [session["id"]]

        ws_url = (
            f"ws://127.0.0.1:{jupyter_server.port}/api/kernels/{kernel_id}/channels"
            f"?token={JUPYTER_TOKEN}"
        )
        stdout, status = await _run_cell(ws_url, "print(6*7)")
        assert (stdout, status) == ("42\n", "ok")
        kernel = (await junction.get(f"api/kernels/{kernel_id}")).json()
        assert kernel["execution_state"] == "idle"

        deleted = await jupyter.delete(f"api/sessions/{session['id']}")
        assert deleted.status_code == 204
        assert (await junction.get(f"api/kernels/{kernel_id}")).status_code == 404
