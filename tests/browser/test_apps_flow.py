"""Apps in a real chromium: Streamlit, Panel, Voila, Gradio, each on its own origin.

The flow (``apps_flow.mjs``) logs in on Junction's origin (``localhost``), opens each app
through ``/apps/{id}/`` (a one-time code hands the browser to ``{id}.apps.localhost``, which
chromium resolves to loopback), renders it, clicks a button whose effect travels over the
framework's WebSocket, probes from the app's page that Junction's cookies and API are out of
reach, and opens a failed app whose page shows its output.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx
import pytest
from helpers import ARTIFACTS, CHROMIUM, check_tools

from junction.testing import TEST_TOKEN, ServerProcess, free_port

pytestmark = [pytest.mark.browser, pytest.mark.timeout(400)]

HERE = Path(__file__).parent
APPS = HERE.parent / "apps"
AUTH = {"Authorization": f"token {TEST_TOKEN}"}


def _create(url: str, body: dict[str, Any]) -> dict[str, Any]:
    response = httpx.post(url + "api/apps", json=body, headers=AUTH)
    assert response.status_code == 201, response.text
    model: dict[str, Any] = response.json()
    deadline = time.monotonic() + 120
    while model["status"] == "starting" and time.monotonic() < deadline:
        time.sleep(0.2)
        model = httpx.get(url + f"api/apps/{model['id']}", headers=AUTH).json()
    return model


def test_streamlit_panel_voila_gradio_in_chromium(tmp_path: Path) -> None:
    check_tools()
    root = tmp_path / "root"
    root.mkdir()
    for name in ("streamlit_app.py", "panel_app.py", "voila_app.ipynb", "gradio_app.py"):
        shutil.copy(APPS / name, root / name)
    port, apps_port = free_port(), free_port()
    args = ["--profile", "none", "--enable", "apps", "--port", str(port), "--ip", "127.0.0.1"]
    args += ["--root-dir", str(root), "--set", f"apps.port={apps_port}"]
    args += ["--set", f"database_url=sqlite+aiosqlite:///{tmp_path}/junction.db"]
    args += ["--set", f"apps.junction_url=http://localhost:{port}/"]
    with ServerProcess(args, log_path=tmp_path / "server.log") as server:
        streamlit = _create(server.url, {"framework": "streamlit", "path": "streamlit_app.py"})
        panel = _create(server.url, {"framework": "panel", "path": "panel_app.py"})
        assert streamlit["status"] == "ready", streamlit
        assert panel["status"] == "ready", panel
        voila = _create(server.url, {"framework": "voila", "path": "voila_app.ipynb"})
        gradio = _create(server.url, {"framework": "gradio", "path": "gradio_app.py"})
        assert voila["status"] == "ready", voila
        assert gradio["status"] == "ready", gradio
        script = "import sys; print('boom: the app could not start', flush=True); sys.exit(1)"
        failed = _create(server.url, {"command": [sys.executable, "-c", script, "{port}"]})
        assert failed["status"] == "failed", failed
        junction = f"http://localhost:{port}/"
        env = {
            **os.environ,
            "JUNCTION_URL": junction,
            "JUNCTION_TOKEN": server.token,
            "APPS": json.dumps(
                {
                    "streamlit": f"{junction}apps/{streamlit['id']}/",
                    "panel": f"{junction}apps/{panel['id']}/",
                    "voila": f"{junction}apps/{voila['id']}/",
                    "gradio": f"{junction}apps/{gradio['id']}/",
                    "failed": f"{junction}apps/{failed['id']}/",
                }
            ),
            "ARTIFACTS_DIR": str(ARTIFACTS),
            "CHROMIUM": str(CHROMIUM),
            "STEP_TIMEOUT_MS": "30000",
        }
        done = subprocess.run(
            ["node", "apps_flow.mjs"],
            cwd=HERE,
            env=env,
            capture_output=True,
            text=True,
            timeout=300,
            check=False,
        )
        lines = done.stdout.strip().splitlines()
        assert lines, f"no output from the flow:\n{done.stderr}\n{server.log()[-3000:]}"
        summary = json.loads(lines[-1])
        assert summary["ok"], f"{summary}\n{done.stderr}\n{server.log()[-3000:]}"
        probes = summary["probes"]
        assert probes["rows"] == 5
        assert probes["streamlitHost"] == f"{streamlit['id']}.apps.localhost:{apps_port}"
        assert probes["panelHost"] == f"{panel['id']}.apps.localhost:{apps_port}"
        assert probes["voilaHost"] == f"{voila['id']}.apps.localhost:{apps_port}"
        assert probes["gradioHost"] == f"{gradio['id']}.apps.localhost:{apps_port}"
        assert "junction" not in probes["appCookies"]
        assert probes["apiFetch"].startswith("blocked"), probes
        assert probes["apiFetchNoCors"] == "opaque opaque 0", probes
        assert probes["failedStatus"] == 502
