"""The kernel-gateway options on a real server with real kernels: the prespawned pool, the
seed notebook, ``force_kernel_name``, listing, ``allowed_env``, ``max_kernels``.

The server's log says when a pool kernel is ready (``kernel pool: kernel <id> ... is ready``);
the tests wait for those lines, so they know which kernel a start must get.
"""

from __future__ import annotations

import json
import re
import signal
import sys
import time
from pathlib import Path
from typing import Any

import anyio
import httpx
import psutil
import pytest
from test_kernel_websocket import AUTH, kernel_socket, start_kernel

from junction.testing import ServerProcess

pytestmark = [pytest.mark.e2e, pytest.mark.anyio]

READY = re.compile(r"kernel pool: kernel (\S+) \(\S+\) is ready; (\d+) of (\d+) ready")
POOL_FAILED = re.compile(r"kernel pool: a kernel failed to start .*; (\d+) failure\(s\) in a row")


def _server(root: Path, *extra: str, profile: tuple[str, ...] | None = None) -> ServerProcess:
    plugins = profile or ("--profile", "none", "--enable", "kernelspecs", "--enable", "kernels")
    return ServerProcess(
        [*plugins, "--port", "0", "--root-dir", str(root), *extra],
        log_path=root / "server.log",
    )


def _notebook(path: Path, *sources: str) -> Path:
    """A notebook with a markdown cell first, then one code cell per source."""
    cells: list[dict[str, Any]] = [{"cell_type": "markdown", "metadata": {}, "source": "# seed"}]
    cells += [
        {"cell_type": "code", "metadata": {}, "source": s, "outputs": [], "execution_count": None}
        for s in sources
    ]
    metadata = {"kernelspec": {"name": "python3", "language": "python", "display_name": "Py"}}
    path.write_text(json.dumps({"nbformat": 4, "nbformat_minor": 5, "metadata": metadata,
                                "cells": cells}))  # fmt: skip
    return path


async def _ready(server: ServerProcess, count: int, timeout: float = 60) -> list[re.Match[str]]:
    """The first ``count`` "pool kernel is ready" log lines, once there are that many."""
    with anyio.fail_after(timeout):
        while len(found := list(READY.finditer(server.log()))) < count:
            await anyio.sleep(0.05)
    return found[:count]


def _kernel_processes(server: ServerProcess) -> dict[str, psutil.Process]:
    """The server's live kernel processes, by kernel id (from their connection files)."""
    processes = {}
    for child in psutil.Process(server.pid).children(recursive=True):
        try:
            if child.status() == psutil.STATUS_ZOMBIE:
                continue
            for part in child.cmdline():
                found = re.search(r"kernel-([0-9a-f-]{36})\.json", part)
                if found:
                    processes[found.group(1)] = child
        except psutil.NoSuchProcess:
            continue
    return processes


async def _wait_gone(process: psutil.Process, timeout: float) -> None:
    with anyio.fail_after(timeout):
        while True:
            try:
                if process.status() == psutil.STATUS_ZOMBIE:
                    return
            except psutil.NoSuchProcess:
                return
            await anyio.sleep(0.05)


def _listed(server: ServerProcess) -> list[str]:
    response = httpx.get(server.url + "api/kernels", headers=AUTH)
    assert response.status_code == 200, response.text
    return [kernel["id"] for kernel in response.json()]


async def test_a_start_gets_a_seeded_pool_kernel_at_once_and_the_pool_refills(
    tmp_path: Path,
) -> None:
    seed = _notebook(tmp_path / "seed.ipynb", "SEEDED = 42", "import os\nSEED_PID = os.getpid()")
    (tmp_path / "sub").mkdir()
    prespawn = ("--set", "kernels.prespawn_count=1", "--set", f"kernels.seed_uri={seed}")
    with _server(tmp_path, *prespawn) as server:
        first = (await _ready(server, 1))[0].group(1)
        # Waiting in the pool, not a client's yet.
        assert _listed(server) == []
        assert httpx.get(server.url + f"api/kernels/{first}", headers=AUTH).status_code == 404

        began = time.perf_counter()
        response = httpx.post(server.url + "api/kernels", headers=AUTH, json={})
        elapsed = time.perf_counter() - began
        assert response.status_code == 201, response.text
        model = response.json()
        assert (model["id"], model["name"], model["execution_state"]) == (first, "python3", "idle")
        assert elapsed < 0.5, f"a pool kernel took {elapsed:.3f} s to hand out"
        async with kernel_socket(server, first) as socket:
            reply = await socket.execute("print(SEEDED, SEED_PID == os.getpid())")
        assert reply.text() == "42 True\n"
        assert reply.reply.content["execution_count"] == 1  # the seed left no history

        # A replacement was started in the background; the next start gets it.
        second = (await _ready(server, 2))[1].group(1)
        assert second != first
        assert start_kernel(server, name="python3", path="top.ipynb") == second

        # A document in a subdirectory needs a kernel in that directory: a new one, seeded too.
        third = start_kernel(server, path="sub/doc.ipynb")
        assert third not in (first, second)
        async with kernel_socket(server, third) as socket:
            reply = await socket.execute("print(SEEDED, os.getcwd())")
        assert reply.text() == f"42 {tmp_path / 'sub'}\n"
        assert _listed(server) == [first, second, third]

        # Pool kernels stop with the server like every other.
        waiting = (await _ready(server, 3))[2].group(1)
        processes = _kernel_processes(server)
        assert sorted(processes) == sorted([first, second, third, waiting])
        assert server.stop(signal.SIGTERM) == 0
    for process in processes.values():
        await _wait_gone(process, timeout=2)
    assert f"kernel {waiting} shut down: the server is stopping" in server.log()


async def test_pool_kernels_make_way_for_clients_under_max_kernels(tmp_path: Path) -> None:
    limits = ("--set", "kernels.prespawn_count=2", "--set", "kernels.max_kernels=2")
    with _server(tmp_path, *limits) as server:
        pool = [found.group(1) for found in await _ready(server, 2)]
        assert sorted(_kernel_processes(server)) == sorted(pool)

        # A start the pool cannot serve (it sets env) makes room by stopping a pool kernel.
        fresh = start_kernel(server, env={"KERNEL_PURPOSE": "test"})
        assert fresh not in pool
        assert f"kernel {pool[1]} shut down: the pool made room" in server.log()
        assert sorted(_kernel_processes(server)) == sorted([pool[0], fresh])

        # The other pool kernel is handed out; then the limit is reached, pool included.
        assert start_kernel(server) == pool[0]
        refused = httpx.post(server.url + "api/kernels", headers=AUTH, json={}, timeout=60)
        assert refused.status_code == 403
        assert refused.json() == {
            "message": "Resource Limit: 2 kernels are running, the most allowed "
            "(kernels.max_kernels); shut one down first",
            "reason": "Resource Limit",
        }
        assert sorted(_kernel_processes(server)) == sorted([pool[0], fresh])

        # Room again: the pool takes it.
        deleted = httpx.delete(server.url + f"api/kernels/{pool[0]}", headers=AUTH, timeout=60)
        assert deleted.status_code == 204
        refill = (await _ready(server, 3))[2]
        assert refill.group(2, 3) == ("1", "1")
        assert _listed(server) == [fresh]
        assert sorted(_kernel_processes(server)) == sorted([fresh, refill.group(1)])


def _forced_spec(share: Path) -> None:
    directory = share / "kernels" / "forced"
    directory.mkdir(parents=True)
    spec = {
        "argv": [sys.executable, "-m", "ipykernel_launcher", "-f", "{connection_file}"],
        "display_name": "Forced",
        "language": "python",
        "env": {"WHICH_SPEC": "forced"},
    }
    (directory / "kernel.json").write_text(json.dumps(spec))


async def test_the_gateway_profile_forces_a_spec_lists_to_the_token_holder_and_filters_env(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _forced_spec(tmp_path / "share")
    monkeypatch.setenv("JUPYTER_PATH", str(tmp_path / "share"))
    gateway = ("--profile", "gateway")
    with _server(tmp_path, "--set", "kernels.force_kernel_name=forced", profile=gateway) as server:
        specs = httpx.get(server.url + "api/kernelspecs", headers=AUTH).json()
        assert specs["default"] == "forced"
        assert "python3" in specs["kernelspecs"]

        response = httpx.post(
            server.url + "api/kernels", headers=AUTH, json={"name": "python3"}, timeout=60
        )
        assert response.status_code == 201, response.text
        kernel = response.json()
        assert kernel["name"] == "forced"
        async with kernel_socket(server, kernel["id"]) as socket:
            reply = await socket.execute("import os; print(os.environ['WHICH_SPEC'])")
        assert reply.text() == "forced\n"

        session = httpx.post(
            server.url + "api/sessions",
            headers=AUTH,
            json={"path": "a.ipynb", "type": "notebook", "kernel": {"name": "python3"}},
            timeout=60,
        )
        assert session.status_code == 201, session.text
        assert session.json()["kernel"]["name"] == "forced"

        # Listing is on for the token holder (GatewayClient needs it), and only for them.
        for what, expected in (("kernels", kernel["id"]), ("sessions", session.json()["id"])):
            listed = httpx.get(server.url + f"api/{what}", headers=AUTH)
            assert listed.status_code == 200, listed.text
            assert expected in [item["id"] for item in listed.json()]
            anonymous = httpx.get(server.url + f"api/{what}")
            assert anonymous.status_code == 403
            assert anonymous.json()["message"] == "Invalid or missing authentication token"
        one = httpx.get(server.url + f"api/kernels/{kernel['id']}", headers=AUTH)
        assert (one.status_code, one.json()["id"]) == (200, kernel["id"])

        # allowed_env (KG's env_whitelist): a variable outside it is refused, by name.
        refused = httpx.post(
            server.url + "api/kernels",
            headers=AUTH,
            json={"env": {"KERNEL_USERNAME": "ana", "LD_PRELOAD": "/tmp/x.so"}},
        )
        assert refused.status_code == 400
        assert refused.json() == {
            "message": "environment variable LD_PRELOAD may not be set by clients; "
            "kernels.allowed_env allows: KERNEL_*",
            "reason": "Environment not allowed",
        }


async def test_a_failing_seed_fails_the_start_clearly_and_the_pool_backs_off(
    tmp_path: Path,
) -> None:
    seed = _notebook(tmp_path / "seed.ipynb", "READY = True", 'raise ValueError("no database")')
    prespawn = ("--set", "kernels.prespawn_count=1", "--set", f"kernels.seed_uri={seed}")
    with _server(tmp_path, *prespawn) as server:
        response = httpx.post(server.url + "api/kernels", headers=AUTH, json={}, timeout=60)
        assert response.status_code == 503
        assert response.json() == {
            "message": f"Kernel python3 failed to run its seed notebook (kernels.seed_uri "
            f"{seed}): cell 3 raised ValueError: no database",
            "reason": "Seed notebook failed",
        }
        assert _listed(server) == []
        assert "cell 3 raised ValueError: no database" in server.log()

        # The pool keeps failing, but waits 1 s, then 2 s, ... between attempts.
        seen: dict[int, float] = {}
        with anyio.fail_after(60):
            while 3 not in seen:
                for found in POOL_FAILED.finditer(server.log()):
                    seen.setdefault(int(found.group(1)), time.monotonic())
                await anyio.sleep(0.05)
        assert seen[3] - seen[1] > 2.5  # at least 1 + 2 s of waiting, whatever the machine
        log = server.log()
        assert "1 failure(s) in a row, next try in 1 s" in log
        assert "2 failure(s) in a row, next try in 2 s" in log
        assert "3 failure(s) in a row, next try in 4 s" in log


def _stubborn_spec(share: Path) -> None:
    """A kernel that does not watch its parent (no JPY_PARENT_PID): only the reaper stops it."""
    directory = share / "kernels" / "stubborn"
    directory.mkdir(parents=True)
    argv = ["env", "-u", "JPY_PARENT_PID", sys.executable, "-m", "ipykernel_launcher"]
    spec = {"argv": [*argv, "-f", "{connection_file}"], "display_name": "S", "language": "python"}
    (directory / "kernel.json").write_text(json.dumps(spec))


async def test_the_reaper_stops_pool_kernels_of_a_killed_server(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _stubborn_spec(tmp_path / "share")
    monkeypatch.setenv("JUPYTER_PATH", str(tmp_path / "share"))
    stubborn = ("--set", "kernels.default_kernel_name=stubborn")
    with _server(tmp_path, "--set", "kernels.prespawn_count=1", *stubborn) as server:
        pooled = (await _ready(server, 1))[0].group(1)
        process = _kernel_processes(server)[pooled]
        server.stop(signal.SIGKILL)
        await _wait_gone(process, timeout=10)
