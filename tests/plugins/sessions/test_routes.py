"""The /api/sessions routes over a fake kernels service: what clients see on success."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest

from junction.testing import app_client

from .fakes import FakeKernels, fake_kernels_plugin

pytestmark = pytest.mark.anyio

UUID = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$")


async def _create(client: Any, **body: Any) -> dict[str, Any]:
    body.setdefault("path", "work/a.ipynb")
    body.setdefault("type", "notebook")
    response = await client.post("/api/sessions", json=body)
    assert response.status_code == 201, response.text
    result: dict[str, Any] = response.json()
    return result


async def test_create_session_starts_a_kernel_and_answers_201_with_location(
    client: Any, kernels: FakeKernels, tmp_path: Path
) -> None:
    response = await client.post(
        "/api/sessions",
        json={"path": "work/a.ipynb", "type": "notebook", "name": "a.ipynb", "kernel": {}},
    )
    assert response.status_code == 201
    session = response.json()
    assert UUID.match(session["id"])
    assert response.headers["location"] == f"/api/sessions/{session['id']}"
    kernel = kernels.kernels[session["kernel"]["id"]]
    assert session == {
        "id": session["id"],
        "path": "work/a.ipynb",
        "name": "a.ipynb",
        "type": "notebook",
        "kernel": kernel.model_dump(mode="json"),
        "notebook": {"path": "work/a.ipynb", "name": "a.ipynb"},
    }
    assert kernel.name == "python3"
    [call] = kernels.starts
    assert call.name is None
    assert call.path == "work/a.ipynb"
    assert call.env == {"JPY_SESSION_NAME": str(tmp_path / "work" / "a.ipynb")}


async def test_console_session_has_no_notebook_field_and_a_null_name(
    client: Any, kernels: FakeKernels
) -> None:
    session = await _create(client, path="Console 1-3f1c", type="console", kernel={"name": "other"})
    assert "notebook" not in session
    assert session["name"] is None
    assert session["kernel"]["name"] == "other"
    assert kernels.starts[0].env == {"JPY_SESSION_NAME": "Console 1-3f1c"}


async def test_create_for_a_path_with_a_session_returns_it_unchanged(
    client: Any, kernels: FakeKernels
) -> None:
    first = await _create(client, name="a.ipynb")
    response = await client.post(
        "/api/sessions",
        json={"path": "work/a.ipynb", "type": "console", "name": "x", "kernel": {"name": "other"}},
    )
    assert response.status_code == 201
    assert response.json() == first
    assert response.headers["location"] == f"/api/sessions/{first['id']}"
    assert len(kernels.starts) == 1


async def test_create_with_a_running_kernel_id_attaches_it(
    client: Any, kernels: FakeKernels
) -> None:
    running = await kernels.start(name="other")
    session = await _create(client, kernel={"id": running.id, "name": "python3"})
    assert session["kernel"]["id"] == running.id
    assert len(kernels.starts) == 1


async def test_create_with_an_unknown_kernel_id_starts_a_kernel_under_that_id(
    client: Any, kernels: FakeKernels
) -> None:
    wanted = "8c5a3a06-2b6e-4a3c-9a51-0b8f3c2d1e77"
    session = await _create(client, kernel={"id": wanted})
    assert session["kernel"]["id"] == wanted
    assert kernels.starts[0].kernel_id == wanted


async def test_legacy_notebook_body_is_accepted(client: Any) -> None:
    response = await client.post(
        "/api/sessions", json={"notebook": {"path": "old.ipynb"}, "kernel": {"name": "python3"}}
    )
    assert response.status_code == 201
    session = response.json()
    assert (session["path"], session["type"]) == ("old.ipynb", "notebook")
    assert session["notebook"] == {"path": "old.ipynb", "name": None}


@pytest.mark.parametrize(
    "content_type",
    [None, "text/plain;charset=UTF-8"],
    ids=["none", "text-plain"],
)
async def test_bodies_are_read_as_json_whatever_their_content_type(
    client: Any, content_type: str | None
) -> None:
    # fetch(url, {body: JSON.stringify(...)}) labels the body text/plain, as JupyterLab sends it.
    headers = {"Content-Type": content_type} if content_type else {}
    created = await client.post(
        "/api/sessions", content=b'{"path": "a.ipynb", "type": "notebook"}', headers=headers
    )
    assert created.status_code == 201, created.text
    patched = await client.patch(
        f"/api/sessions/{created.json()['id']}", content=b'{"name": "b"}', headers=headers
    )
    assert patched.status_code == 200, patched.text
    assert patched.json()["name"] == "b"


async def test_list_and_get_show_the_live_kernel_model(client: Any, kernels: FakeKernels) -> None:
    first = await _create(client, path="a.ipynb")
    second = await _create(client, path="b.ipynb")
    kernels.set_state(first["kernel"]["id"], "busy")

    listed = (await client.get("/api/sessions")).json()
    assert [s["id"] for s in listed] == [first["id"], second["id"]]
    assert listed[0]["kernel"]["execution_state"] == "busy"
    one = await client.get(f"/api/sessions/{first['id']}")
    assert one.status_code == 200
    assert one.json() == listed[0]


async def test_list_ignores_cache_busting_query_parameters(client: Any) -> None:
    await _create(client)
    response = await client.get("/api/sessions?1795301084793")
    assert response.status_code == 200
    assert len(response.json()) == 1


async def test_patch_renames_without_touching_the_kernel(client: Any, kernels: FakeKernels) -> None:
    session = await _create(client, name="a.ipynb")
    response = await client.patch(
        f"/api/sessions/{session['id']}",
        json={"id": session["id"], "path": "work/b.ipynb", "name": "b.ipynb"},
    )
    assert response.status_code == 200
    patched = response.json()
    assert patched["path"] == "work/b.ipynb"
    assert patched["notebook"] == {"path": "work/b.ipynb", "name": "b.ipynb"}
    assert patched["kernel"] == session["kernel"]
    assert kernels.shutdowns == []


async def test_patch_type_away_from_notebook_drops_the_notebook_field(client: Any) -> None:
    session = await _create(client)
    response = await client.patch(f"/api/sessions/{session['id']}", json={"type": "file"})
    assert response.status_code == 200
    assert response.json()["type"] == "file"
    assert "notebook" not in response.json()


async def test_patch_kernel_name_starts_a_new_kernel_and_shuts_the_old_one(
    client: Any, kernels: FakeKernels
) -> None:
    session = await _create(client)
    old = session["kernel"]["id"]
    response = await client.patch(
        f"/api/sessions/{session['id']}", json={"kernel": {"name": "other"}}
    )
    assert response.status_code == 200
    new = response.json()["kernel"]
    assert new["name"] == "other"
    assert new["id"] != old
    assert kernels.shutdowns == [old]
    assert kernels.starts[-1].path == "work/a.ipynb"


async def test_patch_kernel_id_attaches_a_running_kernel_and_releases_the_old(
    client: Any, kernels: FakeKernels
) -> None:
    session = await _create(client)
    old = session["kernel"]["id"]
    other = await kernels.start(name="other")
    response = await client.patch(
        f"/api/sessions/{session['id']}", json={"kernel": {"id": other.id, "name": "ignored"}}
    )
    assert response.status_code == 200
    assert response.json()["kernel"]["id"] == other.id
    assert kernels.shutdowns == [old]
    assert len(kernels.starts) == 2


async def test_patch_to_the_same_kernel_changes_nothing(client: Any, kernels: FakeKernels) -> None:
    session = await _create(client)
    response = await client.patch(
        f"/api/sessions/{session['id']}", json={"kernel": {"id": session["kernel"]["id"]}}
    )
    assert response.json() == session
    assert kernels.shutdowns == []


async def test_patch_with_nulls_changes_nothing(client: Any) -> None:
    session = await _create(client, name="a.ipynb")
    response = await client.patch(
        f"/api/sessions/{session['id']}",
        json={"path": None, "name": None, "type": None, "kernel": None},
    )
    assert response.status_code == 200
    assert response.json() == session


async def test_delete_shuts_the_kernel_down_and_forgets_the_session(
    client: Any, kernels: FakeKernels
) -> None:
    session = await _create(client)
    response = await client.delete(f"/api/sessions/{session['id']}")
    assert response.status_code == 204
    assert response.content == b""
    assert kernels.shutdowns == [session["kernel"]["id"]]
    assert (await client.get("/api/sessions")).json() == []
    assert (await client.get(f"/api/sessions/{session['id']}")).status_code == 404


async def test_a_kernel_shared_by_two_sessions_stays_until_the_last_one_goes(
    client: Any, kernels: FakeKernels
) -> None:
    notebook = await _create(client)
    kernel_id = notebook["kernel"]["id"]
    console = await _create(client, path="Console 1", type="console", kernel={"id": kernel_id})
    assert console["kernel"]["id"] == kernel_id

    assert (await client.delete(f"/api/sessions/{notebook['id']}")).status_code == 204
    assert kernels.shutdowns == []
    assert (await client.get(f"/api/sessions/{console['id']}")).status_code == 200
    assert (await client.delete(f"/api/sessions/{console['id']}")).status_code == 204
    assert kernels.shutdowns == [kernel_id]


async def test_session_whose_kernel_was_shut_down_disappears_from_list_and_get(
    client: Any, kernels: FakeKernels
) -> None:
    gone = await _create(client, path="a.ipynb")
    kept = await _create(client, path="b.ipynb")
    await kernels.shutdown(gone["kernel"]["id"])

    assert [s["id"] for s in (await client.get("/api/sessions")).json()] == [kept["id"]]
    response = await client.get(f"/api/sessions/{gone['id']}")
    assert response.status_code == 404
    assert response.json() == {
        "message": f"Session not found: session_id='{gone['id']}'",
        "reason": "Not Found",
    }


async def test_delete_of_a_session_whose_kernel_is_gone_answers_410(
    client: Any, kernels: FakeKernels
) -> None:
    session = await _create(client)
    await kernels.shutdown(session["kernel"]["id"])
    response = await client.delete(f"/api/sessions/{session['id']}")
    assert response.status_code == 410
    assert response.json() == {"message": "Kernel deleted before session", "reason": "Gone"}
    again = await client.delete(f"/api/sessions/{session['id']}")
    assert again.status_code == 404


async def test_new_session_replaces_one_whose_kernel_is_gone(
    client: Any, kernels: FakeKernels
) -> None:
    stale = await _create(client)
    await kernels.shutdown(stale["kernel"]["id"])
    fresh = await _create(client)
    assert fresh["id"] != stale["id"]
    assert fresh["kernel"]["id"] in kernels.kernels
    assert len(kernels.starts) == 2


async def test_sessions_routes_are_tagged_in_openapi(client: Any) -> None:
    schema = (await client.get("/api/openapi.json")).json()
    operations = [
        op for path, item in schema["paths"].items() if "sessions" in path for op in item.values()
    ]
    assert len(operations) == 5
    assert all(op["tags"] == ["sessions"] for op in operations)


async def test_location_carries_the_base_url(kernels: FakeKernels, tmp_path: Path) -> None:
    async with app_client(
        plugins=[fake_kernels_plugin(kernels)],
        enable=["sessions"],
        root_dir=tmp_path,
        base_url="/user/ana/",
    ) as client:
        response = await client.post(
            "/user/ana/api/sessions?1795301084793", json={"path": "a.ipynb", "type": "notebook"}
        )
    assert response.status_code == 201
    assert response.headers["location"] == f"/user/ana/api/sessions/{response.json()['id']}"
