"""JupyterLab opens Junction apps: "Open as App" in a file's context menu, launcher tiles.

"Open as App" comes from Junction's own prebuilt labextension (installed with the package);
the tiles from jupyter-server-proxy's (installed with the ``apps-test`` extra; its server
extension is never loaded, Junction runs none), which reads Junction's
``/server-proxy/servers-info``. The flow (``apps_launcher.mjs``) finds the menu item on a Dash
file and not on a plain Python file, opens the Dash app in a new tab through ``/apps/{id}/``
(the page renders, a callback round trip updates it), then, after a reload, opens the same
app from its launcher tile.
"""

from __future__ import annotations

import shutil
from pathlib import Path

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


def test_open_as_app_and_the_launcher_tile(tmp_path_factory: pytest.TempPathFactory) -> None:
    with flow_home(tmp_path_factory, "apps-launcher") as home:
        shutil.copy(APPS / "dash_app.py", home / "root" / "dash_app.py")
        shutil.copy(APPS / "echo_app.py", home / "root" / "plain.py")
        args = full_profile_args(home / "root")
        args += ["--set", f"database_url=sqlite+aiosqlite:///{home / 'junction.db'}"]
        with ServerProcess(args, log_path=home / "server.log") as server:
            # Junction's URL on loopback is http://localhost:{port}/; the lab opens there.
            junction = server.url.replace("127.0.0.1", "localhost")
            ARTIFACTS.mkdir(exist_ok=True)
            summary = node_summary("apps_launcher.mjs", flow_env(server, JUNCTION_URL=junction))
            run = Run(summary=summary, server_log=server.log())
            auth = {"Authorization": f"token {server.token}"}
            apps = httpx.get(server.url + "api/apps", headers=auth).json()
    assert_ran_cleanly(run)
    assert [(a["framework"], a["path"], a["status"]) for a in apps] == [
        ("dash", "dash_app.py", "ready")
    ]
    probes = summary["probes"]
    assert probes["frameworks"] == {"path": "", "files": {"dash_app.py": "dash"}}
    assert probes["plainMenu"] == 0
    assert probes["menuLabel"] == "Open as App (Dash)"
    assert probes["tiles"] == 1
    app_host = f"http://{apps[0]['id']}.apps.localhost:"
    assert probes["openedUrl"].startswith(app_host), probes
    assert probes["tileUrl"].startswith(app_host), probes
