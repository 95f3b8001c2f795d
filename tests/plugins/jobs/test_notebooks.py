"""Export and run jobs on real notebooks: nbconvert and nbclient in worker processes, real
ipykernel kernels, results read back with nbformat."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import anyio
import httpx
import nbformat
import psutil
import pytest

from junction.testing import app_client

from .test_jobs import ended, wait_job

pytestmark = pytest.mark.anyio


def write_notebook(path: Path, *sources: str) -> Path:
    """A notebook of code cells (``# md`` cells are markdown) with the python3 kernelspec."""
    notebook = nbformat.v4.new_notebook()  # type: ignore[no-untyped-call]  # untyped library
    notebook.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3"}
    notebook.metadata["language_info"] = {"name": "python", "file_extension": ".py"}
    for source in sources:
        if source.startswith("# md"):
            cell = nbformat.v4.new_markdown_cell(source)  # type: ignore[no-untyped-call]
        else:
            cell = nbformat.v4.new_code_cell(source)  # type: ignore[no-untyped-call]
        notebook.cells.append(cell)
    path.parent.mkdir(parents=True, exist_ok=True)
    nbformat.write(notebook, path)  # type: ignore[no-untyped-call]  # untyped library
    return path


def read_notebook(path: Path) -> Any:
    """A notebook file, validated by nbformat."""
    notebook = nbformat.read(path, as_version=4)  # type: ignore[no-untyped-call]
    nbformat.validate(notebook)
    return notebook


def workers() -> list[psutil.Process]:
    """This process's job workers and their kernels."""
    found = []
    for child in psutil.Process().children(recursive=True):
        try:
            command = " ".join(child.cmdline())
        except psutil.Error:
            continue
        if "notebook_worker" in command or "ipykernel" in command:
            found.append(child)
    return found


async def submit(client: httpx.AsyncClient, **body: Any) -> dict[str, Any]:
    """POST a job; it must be accepted (202, with its Location)."""
    response = await client.post("/api/jobs", json=body)
    assert response.status_code == 202, response.text
    job: dict[str, Any] = response.json()
    assert response.headers["location"] == f"/api/jobs/{job['id']}"
    return job


async def test_export_jobs_make_html_to_download_and_a_script_beside_the_notebook(
    tmp_path: Path,
) -> None:
    write_notebook(tmp_path / "work" / "big.ipynb", "# md Title", "print('hello from export')")
    (tmp_path / "work" / "big.py").write_text("old")
    async with app_client(root_dir=tmp_path, enable=["jobs"]) as client:
        html = await submit(client, kind="export", path="work/big.ipynb", format="html")
        beside = {
            "kind": "export",
            "path": "work/big.ipynb",
            "format": "script",
            "to": "work/big.py",
        }
        refused = await client.post("/api/jobs", json=beside)
        assert refused.status_code == 409, refused.text
        script = await submit(client, **beside, overwrite=True)

        html = await wait_job(client, html["id"], ended)
        assert html["status"] == "completed", html
        assert html["result"]["name"] == "big.html"
        download = await client.get(html["result"]["url"])
        assert download.status_code == 200
        assert download.headers["content-type"].startswith("text/html")
        assert 'filename="big.html"' in download.headers["content-disposition"]
        assert "<html" in download.text
        assert "hello from export" in download.text
        size = len(download.content)
        assert html["progress"] == {"done": size, "total": size, "unit": "bytes"}

        script = await wait_job(client, script["id"], ended)
        assert script["status"] == "completed", script
        assert script["to"] == "work/big.py"
        assert "url" not in script["result"]
        assert (await client.get(f"/api/jobs/{script['id']}/result")).status_code == 409
    text = (tmp_path / "work" / "big.py").read_text()
    assert "print('hello from export')" in text
    assert sorted(p.name for p in (tmp_path / "work").iterdir()) == ["big.ipynb", "big.py"]


async def test_run_jobs_write_the_outputs_and_a_failing_cell_fails_with_the_partial_notebook(
    tmp_path: Path,
) -> None:
    write_notebook(
        tmp_path / "analysis.ipynb",
        "print('hello from a run')",
        "import os\nanswer = 6 * 7\nanswer",
        "# md Notes",
        "os.getcwd()",
    )
    write_notebook(tmp_path / "broken.ipynb", "print('before')", "1 / 0", "print('never printed')")
    async with app_client(root_dir=tmp_path, enable=["jobs"]) as client:
        (tmp_path / "out").mkdir()
        good = await submit(
            client,
            kind="run",
            path="analysis.ipynb",
            to="out/analysis-run.ipynb",
            kernel_name="python3",
            timeout=60,
        )
        bad = await submit(client, kind="run", path="broken.ipynb", to="broken-run.ipynb")
        assert good["progress"]["unit"] == "cells"
        events = []
        async with client.stream("GET", f"/api/jobs/{good['id']}/events") as stream:
            async for line in stream.aiter_lines():
                if line.startswith("data: "):
                    events.append(json.loads(line.removeprefix("data: ")))
        good = events[-1]
        assert good["status"] == "completed", good
        assert good["progress"] == {"done": 4, "total": 4, "unit": "cells"}
        assert good["result"]["cells"] == 4
        seen = [event["progress"]["done"] for event in events if event["status"] == "running"]
        assert seen == sorted(seen)

        bad = await wait_job(client, bad["id"], ended)
        assert bad["status"] == "failed"
        assert bad["error"] == "cell 2 raised ZeroDivisionError: division by zero"
        assert bad["progress"] == {"done": 1, "total": 3, "unit": "cells"}
        assert workers() == []

    ran = read_notebook(tmp_path / "out" / "analysis-run.ipynb")
    cells = ran.cells
    assert [cell.get("execution_count") for cell in cells] == [1, 2, None, 3]
    assert cells[0].outputs[0]["text"] == "hello from a run\n"
    assert cells[1].outputs[0]["data"]["text/plain"] == "42"
    assert cells[3].outputs[0]["data"]["text/plain"] == repr(str(tmp_path))
    assert ran.metadata["language_info"]["name"] == "python"
    assert read_notebook(tmp_path / "analysis.ipynb").cells[0].outputs == []

    partial = read_notebook(tmp_path / "broken-run.ipynb").cells
    assert partial[0].outputs[0]["text"] == "before\n"
    assert partial[1].outputs[0]["output_type"] == "error"
    assert partial[1].outputs[0]["ename"] == "ZeroDivisionError"
    assert partial[2].outputs == []
    assert partial[2].execution_count is None
    assert sorted(p.name for p in tmp_path.iterdir() if p.name.startswith(".")) == []


async def test_cancelling_a_run_interrupts_it_and_leaves_no_kernel(tmp_path: Path) -> None:
    write_notebook(tmp_path / "slow.ipynb", "print('started')", "import time\ntime.sleep(60)")
    async with app_client(root_dir=tmp_path, enable=["jobs"]) as client:
        job = await submit(client, kind="run", path="slow.ipynb", to="slow-run.ipynb")
        await wait_job(client, job["id"], lambda j: j["progress"]["done"] == 1)
        processes = workers()
        assert len(processes) == 2, processes  # the worker and its kernel
        with anyio.fail_after(30):  # well before the 60 s cell could end by itself
            response = await client.delete(f"/api/jobs/{job['id']}")
        assert response.status_code == 204
        job = (await client.get(f"/api/jobs/{job['id']}")).json()
        assert job["status"] == "cancelled"
        assert job["error"] == "cancelled"
        _, alive = psutil.wait_procs(processes, timeout=10)
        assert alive == []
    assert sorted(p.name for p in tmp_path.iterdir()) == ["slow.ipynb"]


@pytest.mark.parametrize(
    ("body", "status"),
    [
        ({"kind": "export", "path": "nb.ipynb", "format": "pdf"}, 400),
        ({"kind": "export", "path": "nb.ipynb", "format": "nbconvert.exporters.HTMLExporter"}, 400),
        ({"kind": "export", "path": "nb.ipynb"}, 400),
        ({"kind": "export", "path": "folder", "format": "html"}, 400),
        ({"kind": "export", "path": "notes.txt", "format": "html"}, 400),
        ({"kind": "export", "path": "../outside.ipynb", "format": "html"}, 400),
        ({"kind": "export", "path": "link.ipynb", "format": "html"}, 404),
        ({"kind": "export", "path": "missing.ipynb", "format": "html"}, 404),
        ({"kind": "export", "path": "nb.ipynb", "format": "html", "to": "nb.ipynb"}, 409),
        ({"kind": "export", "path": "nb.ipynb", "format": "html", "to": "folder"}, 409),
        ({"kind": "export", "path": "nb.ipynb", "format": "html", "to": "../x.html"}, 400),
        ({"kind": "export", "path": "nb.ipynb", "format": "html", "to": "no/x.html"}, 404),
        ({"kind": "export", "path": "nb.ipynb", "format": "html", "timeout": 5}, 400),
        ({"kind": "run", "path": "nb.ipynb"}, 400),
        ({"kind": "run", "path": "nb.ipynb", "to": "r.ipynb", "format": "html"}, 400),
        ({"kind": "run", "path": "nb.ipynb", "to": "r.ipynb", "kernel_name": "../k"}, 400),
        ({"kind": "run", "path": "nb.ipynb", "to": "r.ipynb", "kernel_name": "nope"}, 400),
        ({"kind": "run", "path": "nb.ipynb", "to": "r.ipynb", "timeout": 0}, 400),
        ({"kind": "zip", "path": "folder", "format": "html"}, 400),
        ({"kind": "zip", "path": "folder", "overwrite": True}, 400),
    ],
)
async def test_bad_notebook_job_requests_get_clear_errors(
    tmp_path: Path, body: dict[str, Any], status: int
) -> None:
    root = tmp_path / "root"
    write_notebook(root / "nb.ipynb", "1")
    write_notebook(tmp_path / "outside.ipynb", "1")
    (root / "link.ipynb").symlink_to(tmp_path / "outside.ipynb")
    (root / "folder").mkdir()
    (root / "notes.txt").write_text("not a notebook")
    async with app_client(root_dir=root, enable=["jobs"]) as client:
        response = await client.post("/api/jobs", json=body)
        assert response.status_code == status, response.text
        assert set(response.json()) >= {"message", "reason"}
        assert (await client.get("/api/jobs")).json() == []
