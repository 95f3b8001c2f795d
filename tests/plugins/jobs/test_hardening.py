"""Export and run jobs against hostile input: modules beside the notebook, a worker that
lies, folders swapped for links, links into other homes, hidden and existing files."""

from __future__ import annotations

import base64
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import anyio
import psutil
import pytest

from junction.plugins.jobs.folders import Reporter
from junction.plugins.jobs.notebook_worker import JobFailed, export
from junction.plugins.jobs.notebooks import (
    WorkerFailed,
    _kill_kernel,
    _read_events,
    checked_result,
)
from junction.testing import app_client, user_headers

from .test_jobs import ended, wait_job
from .test_notebooks import submit, write_notebook

pytestmark = pytest.mark.anyio

_PLANT = "import pathlib\npathlib.Path(__file__).with_name('planted').write_text('ran')\n"


async def test_modules_beside_the_notebook_are_never_imported_by_the_worker(
    tmp_path: Path,
) -> None:
    work = tmp_path / "work"
    write_notebook(work / "nb.ipynb", "import os\nopen('cwd.txt', 'w').write(os.getcwd())")
    (work / "json.py").write_text(_PLANT)  # the worker's first import
    (work / "nbclient.py").write_text(_PLANT)  # the run worker's, not the kernel's
    async with app_client(root_dir=tmp_path, enable=["jobs"]) as client:
        exported = await submit(client, kind="export", path="work/nb.ipynb", format="script")
        ran = await submit(client, kind="run", path="work/nb.ipynb", to="work/out.ipynb")
        for job in (exported, ran):
            done = await wait_job(client, job["id"], ended)
            assert done["status"] == "completed", done
    assert not (work / "planted").exists()
    assert (work / "cwd.txt").read_text() == str(work)  # the kernel still starts there


_LIAR = """
import json, os, subprocess, sys
kernel = subprocess.Popen(["sleep", "60"], start_new_session=True, stdout=subprocess.DEVNULL)
events = [{"total": 2}, {"done": 99}, {"kernel": kernel.pid}, {"kernel": 0},
          {"kernel": 1}, {"kernel": "x"}, {"kernel": int(sys.argv[1])}]
for event in events:
    print(json.dumps(event), flush=True)
sys.stdout.flush()
os.close(1)
sys.stdin.read()
"""


async def test_a_worker_cannot_have_the_server_kill_what_it_names(tmp_path: Path) -> None:
    victim = subprocess.Popen(["sleep", "60"], start_new_session=True)
    liar = await anyio.open_process(
        [sys.executable, "-c", _LIAR, str(victim.pid)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        start_new_session=True,
    )
    kernel = None
    try:
        reporter = Reporter()
        state: dict[str, Any] = {"kernel": None}
        with anyio.fail_after(20):
            await _read_events(liar, reporter, state)
        assert (reporter.done, reporter.total) == (2, 2)
        kernel = psutil.Process(liar.pid).children()[0]
        _kill_kernel(state["kernel"])
        with anyio.fail_after(10):  # the worker's own kernel: killed (a zombie, unreaped)
            while _alive(kernel):
                await anyio.sleep(0.02)
        assert victim.poll() is None  # anything else: left alone
    finally:
        victim.kill()
        victim.wait()
        if kernel is not None and kernel.is_running():
            kernel.kill()
        await liar.aclose()


def _alive(process: psutil.Process) -> bool:
    try:
        return process.status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


def test_worker_results_are_kept_to_their_fields() -> None:
    store = {"kind": "export", "format": "html", "store": True}
    forged = {"name": "a.html", "media_type": "text/html", "size": -5, "url": "x"}
    assert checked_result(store, forged) == {
        "size": 0,
        "format": "html",
        "name": "a.html",
        "media_type": "text/html",
    }
    bad: object
    for bad in ({**forged, "media_type": "text/html\r\nX: y"}, {**forged, "name": 3}, []):
        with pytest.raises(WorkerFailed):
            checked_result(store, bad)
    run = {"kind": "run", "store": False}
    assert checked_result(run, {"cells": 3, "size": 10**12, "x": 1}) == {"cells": 3, "size": 0}


def test_a_destination_folder_swapped_for_a_link_is_refused(tmp_path: Path) -> None:
    root, outside = tmp_path / "root", tmp_path / "outside"
    outside.mkdir()
    notebook = write_notebook(root / "nb.ipynb", "1 + 1")
    for folder in (root / "out", root / "a" / "b"):
        folder.mkdir(parents=True)
        request = {
            "kind": "export",
            "source": str(notebook),
            "target": str(folder / "nb.py"),
            "partial": str(folder / ".nb.py.part-1"),
            "store": False,
            "overwrite": False,
            "format": "script",
        }
        # The check passed at submit; then the folder (or one above) becomes a link.
        swapped = root / folder.relative_to(root).parts[0]
        (outside / "b").mkdir(exist_ok=True)
        os.rename(swapped, tmp_path / "moved")
        swapped.symlink_to(outside)
        with pytest.raises(JobFailed, match="moved"):
            export(request)
        assert sorted(p.name for p in outside.rglob("*")) == ["b"]
        swapped.unlink()
        os.rename(tmp_path / "moved", swapped)


async def test_links_do_not_lead_jobs_into_other_homes(tmp_path: Path) -> None:
    for name in ("ana", "bob"):
        (tmp_path / "home" / name).mkdir(parents=True)
    write_notebook(tmp_path / "home" / "bob" / "nb.ipynb", "1 + 1")
    write_notebook(tmp_path / "home" / "ana" / "nb.ipynb", "1 + 1")
    (tmp_path / "home" / "ana" / "peek").symlink_to(tmp_path / "home" / "bob")
    async with app_client(root_dir=tmp_path, enable=["users", "jobs"]) as admin:
        ana = await user_headers(admin, "ana")
        await user_headers(admin, "bob")
        mine = {"kind": "export", "path": "home/ana/nb.ipynb", "format": "script"}
        for body in (
            {**mine, "path": "home/ana/peek/nb.ipynb"},
            {"kind": "zip", "path": "home/ana/peek"},
            {"kind": "copy", "path": "home/ana/peek", "to": "home/ana/copy"},
            {**mine, "to": "home/ana/peek/out.py"},
            {"kind": "run", "path": "home/ana/nb.ipynb", "to": "home/ana/peek/out.ipynb"},
        ):
            response = await admin.post("/api/jobs", headers=ana, json=body)
            assert response.status_code == 404, (body, response.text)
        response = await admin.post("/api/jobs", headers=ana, json={**mine, "to": "home/ana/a.py"})
        assert response.status_code == 202, response.text


async def test_extra_files_and_hidden_names_are_not_overwritten(tmp_path: Path) -> None:
    import nbformat

    work = tmp_path / "work"
    notebook = write_notebook(work / "nb.ipynb", "1 + 1")
    node = nbformat.read(notebook, as_version=4)  # type: ignore[no-untyped-call]
    png = base64.b64decode(
        "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNkYPhfDwAChwGA60e6kgAAAABJRU5ErkJggg=="
    )
    output = nbformat.v4.new_output(  # type: ignore[no-untyped-call]  # untyped library
        "display_data", data={"image/png": base64.b64encode(png).decode()}
    )
    node.cells[0].outputs.append(output)
    nbformat.write(node, notebook)  # type: ignore[no-untyped-call]
    (work / "output_0_0.png").write_bytes(b"mine")
    (work / ".hidden").mkdir()
    (work / "lnk").symlink_to(work / ".hidden")
    async with app_client(root_dir=tmp_path, enable=["jobs"]) as client:
        markdown = {"kind": "export", "path": "work/nb.ipynb", "format": "markdown"}
        for to in ("work/.bashrc", "work/.hidden/nb.md", "work/lnk/nb.md"):
            body = {**markdown, "to": to, "overwrite": True}
            response = await client.post("/api/jobs", json=body)
            assert response.status_code == 400, (to, response.text)
            assert response.json()["message"]
        job = await submit(client, **markdown, to="work/nb.md")
        done = await wait_job(client, job["id"], ended)
        assert done["status"] == "failed", done
        assert "output_0_0.png already exists" in done["error"]
        assert (work / "output_0_0.png").read_bytes() == b"mine"
        assert not (work / "nb.md").exists()  # nothing half done
        job = await submit(client, **markdown, to="work/nb.md", overwrite=True)
        done = await wait_job(client, job["id"], ended)
        assert done["status"] == "completed", done
        assert done["result"]["files"] == ["output_0_0.png"]
        assert (work / "output_0_0.png").read_bytes() == png
    assert sorted(p.name for p in (work / ".hidden").iterdir()) == []
