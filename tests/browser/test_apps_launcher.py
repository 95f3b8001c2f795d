"""JupyterLab's launcher opens Junction apps, and a Dash app renders through the proxy.

jupyter-server-proxy's prebuilt labextension (installed with the ``apps-test`` extra; its
server extension is never loaded, Junction runs none) fetches ``/server-proxy/servers-info``
from Junction and draws a tile per app. The flow (``apps_launcher.mjs``) clicks the tile of a
Dash app created through the API: a new tab goes through ``/apps/{id}/`` to the app's own
host, the Dash page renders and a callback round trip updates it.
"""

from __future__ import annotations

import shutil
import time
from pathlib import Path
from typing import Any

import httpx
import pytest
from helpers import (
    ARTIFACTS,
    Run,
    assert_ran_cleanly,
    flow_env,
    flow_home,
    full_profile_args,
    node_summary,
)

from junction.testing import ServerProcess

pytestmark = [pytest.mark.browser, pytest.mark.timeout(240)]

APPS = Path(__file__).parent.parent / "apps"
TITLE = "Dash counter"


def _ready_app(server: ServerProcess, body: dict[str, Any]) -> dict[str, Any]:
    auth = {"Authorization": f"token {server.token}"}
    response = httpx.post(server.url + "api/apps", json=body, headers=auth)
    assert response.status_code == 201, response.text
    model: dict[str, Any] = response.json()
    deadline = time.monotonic() + 90
    while model["status"] == "starting" and time.monotonic() < deadline:
        time.sleep(0.2)
        model = httpx.get(server.url + f"api/apps/{model['id']}", headers=auth).json()
    return model


def test_launcher_tile_opens_a_dash_app(tmp_path_factory: pytest.TempPathFactory) -> None:
    with flow_home(tmp_path_factory, "apps-launcher") as home:
        shutil.copy(APPS / "dash_app.py", home / "root" / "dash_app.py")
        args = full_profile_args(home / "root")
        args += ["--set", f"database_url=sqlite+aiosqlite:///{home / 'junction.db'}"]
        with ServerProcess(args, log_path=home / "server.log") as server:
            app = _ready_app(server, {"framework": "dash", "path": "dash_app.py", "name": TITLE})
            assert app["status"] == "ready", app
            # Junction's URL on loopback is http://localhost:{port}/; the lab opens there.
            junction = server.url.replace("127.0.0.1", "localhost")
            env = flow_env(server, JUNCTION_URL=junction, APP_TITLE=TITLE)
            ARTIFACTS.mkdir(exist_ok=True)
            summary = node_summary("apps_launcher.mjs", env, timeout=180)
            run = Run(summary=summary, server_log=server.log())
    assert_ran_cleanly(run)
    probes = summary["probes"]
    assert probes["tiles"] == 1
    assert probes["appUrl"].startswith(f"http://{app['id']}.apps.localhost:"), probes
