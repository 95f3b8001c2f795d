"""JupyterLab settings (themes included) and workspaces are kept per user in multi-user mode;
single-user mode keeps its rows as they were. SQLite and PostgreSQL."""

from __future__ import annotations

import pytest
from tests.plugins.users.conftest import MultiUser

from junction.testing import user_headers

pytestmark = pytest.mark.anyio

THEMES = "@jupyterlab/apputils-extension:themes"


def _workspace(workspace_id: str, marker: str) -> dict[str, object]:
    return {"data": {"marker": marker}, "metadata": {"id": workspace_id}}


async def test_settings_and_workspaces_are_per_user(multiuser: MultiUser) -> None:
    async with multiuser("contents", "frontend", "lab") as admin:
        ana = await user_headers(admin, "ana")
        bob = await user_headers(admin, "bob")
        dark = '{"theme": "JupyterLab Dark"}'
        saved = await admin.put(f"/lab/api/settings/{THEMES}", headers=ana, json={"raw": dark})
        assert saved.status_code == 204, saved.text
        hers = (await admin.get(f"/lab/api/settings/{THEMES}", headers=ana)).json()
        assert hers["raw"] == dark
        assert hers["settings"]["theme"] == "JupyterLab Dark"
        his = (await admin.get(f"/lab/api/settings/{THEMES}", headers=bob)).json()
        assert his["raw"] == "{}"
        mine = (await admin.get(f"/lab/api/settings/{THEMES}")).json()
        assert mine["raw"] == "{}"

        put = await admin.put(
            "/lab/api/workspaces/default", headers=ana, json=_workspace("default", "ana")
        )
        assert put.status_code == 204, put.text
        got = await admin.get("/lab/api/workspaces/default", headers=ana)
        assert got.json()["data"] == {"marker": "ana"}
        theirs = await admin.get("/lab/api/workspaces/default", headers=bob)
        assert theirs.json()["data"] != {"marker": "ana"}
        listed = (await admin.get("/lab/api/workspaces", headers=bob)).json()
        assert listed["workspaces"]["ids"] == []
        assert (await admin.delete("/lab/api/workspaces/default", headers=bob)).status_code == 404
        assert (await admin.delete("/lab/api/workspaces/default", headers=ana)).status_code == 204
