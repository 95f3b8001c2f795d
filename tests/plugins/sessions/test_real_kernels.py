"""Sessions over the real kernels plugin: real ipykernel processes over real ZeroMQ.

These run the ``kernels`` profile in-process (kernelspecs, kernels, sessions, listing on) and
check that sessions and ``/api/kernels`` agree at every step.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from junction import PluginGraphError
from junction.app import create_app
from junction.cli import main
from junction.testing import app_client, make_settings

pytestmark = pytest.mark.anyio


async def _kernel_ids(client: Any) -> list[str]:
    response = await client.get("/api/kernels")
    assert response.status_code == 200
    return [kernel["id"] for kernel in response.json()]


async def test_session_kernels_follow_create_patch_and_delete(tmp_path: Path) -> None:
    (tmp_path / "nb").mkdir()
    async with app_client(profile="kernels", root_dir=tmp_path) as client:
        created = await client.post(
            "/api/sessions",
            json={"path": "nb/a.ipynb", "type": "notebook", "name": "a.ipynb", "kernel": {}},
        )
        assert created.status_code == 201, created.text
        session = created.json()
        first = session["kernel"]["id"]
        assert await _kernel_ids(client) == [first]
        kernel = (await client.get(f"/api/kernels/{first}")).json()
        assert session["kernel"]["name"] == kernel["name"] == "python3"

        patched = await client.patch(
            f"/api/sessions/{session['id']}", json={"kernel": {"name": "python3"}}
        )
        assert patched.status_code == 200, patched.text
        second = patched.json()["kernel"]["id"]
        assert second != first
        assert await _kernel_ids(client) == [second]

        deleted = await client.delete(f"/api/sessions/{session['id']}")
        assert deleted.status_code == 204
        assert await _kernel_ids(client) == []
        assert (await client.get("/api/sessions")).json() == []


async def test_kernel_shut_down_through_the_kernels_api_ends_its_session(tmp_path: Path) -> None:
    async with app_client(profile="kernels", root_dir=tmp_path) as client:
        listed = await client.post("/api/sessions", json={"path": "a.ipynb", "type": "notebook"})
        deleted = await client.post("/api/sessions", json={"path": "b.ipynb", "type": "notebook"})
        assert (listed.status_code, deleted.status_code) == (201, 201)
        for session in (listed.json(), deleted.json()):
            response = await client.delete(f"/api/kernels/{session['kernel']['id']}")
            assert response.status_code == 204

        gone = await client.delete(f"/api/sessions/{deleted.json()['id']}")
        assert gone.status_code == 410
        assert gone.json() == {"message": "Kernel deleted before session", "reason": "Gone"}
        assert (await client.get("/api/sessions")).json() == []
        assert (await client.get(f"/api/sessions/{listed.json()['id']}")).status_code == 404


async def test_unknown_kernel_spec_answers_400_and_starts_nothing(tmp_path: Path) -> None:
    async with app_client(profile="kernels", root_dir=tmp_path) as client:
        response = await client.post(
            "/api/sessions",
            json={"path": "a.ipynb", "type": "notebook", "kernel": {"name": "no-such-spec"}},
        )
        assert response.status_code == 400
        assert response.json()["short_message"] == "no-such-spec not found"
        assert await _kernel_ids(client) == []


def test_enabling_sessions_without_kernels_names_the_plugin_to_enable() -> None:
    with pytest.raises(PluginGraphError) as caught:
        create_app(make_settings(enable=["sessions"]))
    assert str(caught.value) == "sessions requires kernels; enable kernels"


def test_the_command_refuses_sessions_without_kernels(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    config = tmp_path / "junction.toml"
    config.write_text("")
    status = main(["--config", str(config), "--profile", "none", "--enable", "sessions"])
    assert status == 2
    assert capsys.readouterr().err == "junction: sessions requires kernels; enable kernels\n"
