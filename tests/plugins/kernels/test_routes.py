"""The /api/kernels routes in-process, over real ipykernel kernels."""

from __future__ import annotations

import os
import re
from pathlib import Path

import anyio
import psutil
import pytest

from .conftest import kernels_app

pytestmark = pytest.mark.anyio

UUID = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")
ISO_Z = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d+Z$")


def _pid(service: object, kernel_id: str) -> int:
    from junction.plugins.kernels.manager import JupyterClientKernels

    assert isinstance(service, JupyterClientKernels)
    pid = getattr(service.kernel(kernel_id).manager.provisioner, "pid", None)
    assert isinstance(pid, int)
    return pid


async def test_kernel_lifecycle_start_get_interrupt_restart_delete(tmp_path: Path) -> None:
    async with kernels_app(tmp_path) as (client, service):
        started = await client.post("/api/kernels", json={"name": "python3"})
        assert started.status_code == 201
        kernel = started.json()
        assert UUID.match(kernel["id"])
        assert started.headers["location"] == f"/api/kernels/{kernel['id']}"
        assert kernel["name"] == "python3"
        assert kernel["execution_state"] == "idle"
        assert kernel["connections"] == 0
        assert ISO_Z.match(kernel["last_activity"])
        assert "reason" not in kernel
        first_pid = _pid(service, kernel["id"])

        assert (await client.get(f"/api/kernels/{kernel['id']}")).json()["id"] == kernel["id"]
        assert [k["id"] for k in (await client.get("/api/kernels")).json()] == [kernel["id"]]
        status = (await client.get("/api/status")).json()
        assert status["kernels"] == 1
        assert status["connections"] == 0

        assert (await client.post(f"/api/kernels/{kernel['id']}/interrupt")).status_code == 204

        restarted = await client.post(f"/api/kernels/{kernel['id']}/restart")
        assert restarted.status_code == 200
        assert restarted.json()["id"] == kernel["id"]
        assert restarted.json()["execution_state"] == "idle"
        second_pid = _pid(service, kernel["id"])
        assert second_pid != first_pid
        assert not psutil.pid_exists(first_pid) or psutil.Process(first_pid).status() == "zombie"

        assert (await client.delete(f"/api/kernels/{kernel['id']}")).status_code == 204
        assert (await client.get(f"/api/kernels/{kernel['id']}")).status_code == 404
        assert (await client.get("/api/kernels")).json() == []
        assert not psutil.pid_exists(second_pid)


async def test_path_sets_the_working_directory_and_allowed_env_reaches_the_kernel(
    tmp_path: Path,
) -> None:
    (tmp_path / "work" / "sub").mkdir(parents=True)
    async with kernels_app(tmp_path, allowed_env=["KERNEL_*", "MY_VAR"]) as (client, service):
        response = await client.post(
            "/api/kernels",
            json={
                "path": "work/sub/missing/notebook.ipynb",
                "env": {"KERNEL_USERNAME": "ana", "MY_VAR": "yes"},
            },
        )
        assert response.status_code == 201, response.text
        process = psutil.Process(_pid(service, response.json()["id"]))
        assert Path(process.cwd()) == tmp_path / "work" / "sub"
        environ = process.environ()
        assert environ["KERNEL_USERNAME"] == "ana"
        assert environ["MY_VAR"] == "yes"
        assert environ["PATH"] == os.environ["PATH"]  # the server's environment is kept


async def test_bad_start_requests_are_refused_before_any_kernel_starts(tmp_path: Path) -> None:
    async with kernels_app(tmp_path) as (client, _service):
        env = await client.post("/api/kernels", json={"env": {"LD_PRELOAD": "/tmp/evil.so"}})
        spec = await client.post("/api/kernels", json={"name": "no-such-spec"})
        escape = await client.post("/api/kernels", json={"path": "../outside/a.ipynb"})
        bad_id = await client.post("/api/kernels", json={"kernel_id": "not-a-uuid"})
        bad_body = await client.post("/api/kernels", json={"name": 5})
        listed = await client.get("/api/kernels")
    assert env.status_code == 400
    assert env.json() == {
        "message": "environment variable LD_PRELOAD may not be set by clients; "
        "kernels.allowed_env allows: KERNEL_*",
        "reason": "Environment not allowed",
    }
    assert spec.status_code == 404
    assert spec.json() == {
        "message": "No such kernel named no-such-spec",
        "reason": "No such kernel",
    }
    assert escape.status_code == 400
    assert "outside the served directory" in escape.json()["message"]
    assert bad_id.status_code == 400
    assert bad_body.status_code == 400
    assert listed.json() == []


async def test_unknown_kernel_ids_are_404_on_every_route(tmp_path: Path) -> None:
    missing = "00000000-0000-4000-8000-000000000000"
    async with kernels_app(tmp_path) as (client, _service):
        responses = [
            await client.get(f"/api/kernels/{missing}"),
            await client.delete(f"/api/kernels/{missing}"),
            await client.post(f"/api/kernels/{missing}/interrupt"),
            await client.post(f"/api/kernels/{missing}/restart"),
        ]
    for response in responses:
        assert response.status_code == 404
        assert response.json() == {
            "message": f"Kernel does not exist: {missing}",
            "reason": "Not Found",
        }


async def test_max_kernels_refuses_one_more_with_403_and_a_client_id_is_reused(
    tmp_path: Path,
) -> None:
    chosen = "12345678-1234-4234-8234-123456789abc"
    async with kernels_app(tmp_path, max_kernels=1) as (client, _service):
        first = await client.post("/api/kernels", json={"kernel_id": chosen})
        again = await client.post("/api/kernels", json={"kernel_id": chosen})
        second = await client.post("/api/kernels", json={})
    assert first.status_code == 201
    assert first.json()["id"] == chosen
    assert again.status_code == 201
    assert again.json()["id"] == chosen
    assert second.status_code == 403
    assert second.json()["reason"] == "Resource Limit"
    assert "kernels.max_kernels" in second.json()["message"]


async def test_idle_kernels_are_culled(tmp_path: Path) -> None:
    async with kernels_app(tmp_path, cull_idle_timeout=0.5, cull_interval=0.2) as (client, svc):
        kernel = (await client.post("/api/kernels", json={})).json()
        pid = _pid(svc, kernel["id"])
        with anyio.fail_after(10):
            while svc.exists(kernel["id"]):
                await anyio.sleep(0.1)
        assert (await client.get(f"/api/kernels/{kernel['id']}")).status_code == 404
    assert not psutil.pid_exists(pid)


async def test_server_exit_shuts_every_kernel_down(tmp_path: Path) -> None:
    async with kernels_app(tmp_path) as (client, service):
        started = [(await client.post("/api/kernels", json={})).json() for _ in range(2)]
        pids = [_pid(service, kernel["id"]) for kernel in started]
        assert all(psutil.pid_exists(pid) for pid in pids)
    assert not any(psutil.pid_exists(pid) for pid in pids)
