"""``GET /api/apps/frameworks``: which files of a folder a preset would run ("Open as app")."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from tests.plugins.apps.test_routes import apps_client

from junction.plugins.apps.presets import detect_framework

pytestmark = pytest.mark.anyio

APPS = Path(__file__).parents[2] / "apps"


async def test_frameworks_of_a_folder(tmp_path: Path) -> None:
    root = tmp_path / "root"
    (root / "sub").mkdir(parents=True)
    for name in ("streamlit_app.py", "panel_app.py", "dash_app.py", "voila_app.ipynb"):
        shutil.copy(APPS / name, root / "sub" / name)
    shutil.copy(APPS / "echo_app.py", root / "sub" / "plain.py")
    (root / "sub" / ".hidden.py").write_text("import streamlit\n")
    (root / "sub" / "notes.txt").write_text("import streamlit\n")
    async with apps_client(root) as client:
        found = await client.get("/api/apps/frameworks", params={"path": "sub"})
        assert found.status_code == 200, found.text
        assert found.json() == {
            "path": "sub",
            "files": {
                "dash_app.py": "dash",
                "panel_app.py": "panel",
                "streamlit_app.py": "streamlit",
                "voila_app.ipynb": "voila",
            },
        }
        assert (await client.get("/api/apps/frameworks")).json()["files"] == {}
        outside = await client.get("/api/apps/frameworks", params={"path": "../"})
        assert outside.status_code == 400, outside.text
        for bad in ("a\x00b", "x" * 5000):
            refused = await client.get("/api/apps/frameworks", params={"path": bad})
            assert refused.status_code == 400, refused.text
        missing = await client.get("/api/apps/frameworks", params={"path": "nowhere"})
        assert missing.status_code == 404
        assert missing.json()["message"] == "No such folder: nowhere"
        anonymous = await client.get("/api/apps/frameworks", headers={"Authorization": ""})
        assert anonymous.status_code in (401, 403)


def test_the_first_framework_imported_wins(tmp_path: Path) -> None:
    app = tmp_path / "app.py"
    app.write_text("import bokeh.plotting\nfrom panel import widgets\n")
    assert detect_framework(app) == "panel"
    app.write_text('"""import streamlit"""\nx = 1\n  import gradio as gr\n')
    assert detect_framework(app) == "gradio"
    app.write_text("import streamlit_extras\n")
    assert detect_framework(app) is None
