"""Jobs work on what the user was judged to reach, whatever a link leads to afterwards.

The submit route checks a path (the users plugin's ``check``), then the job opens it. A
user who re-points a link in their own home between the two must not get another user's
files archived, copied or run, nor have a job write into another home. The race is made
certain: the users plugin's ``check`` is wrapped so that, right after it judged the path
the link really leads to, the link is re-pointed at Bob's folder.

In process, on SQLite, with real jobs (worker threads, and notebook worker processes).
"""

from __future__ import annotations

import io
import os
import zipfile
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import nbformat
import pytest
from tests.plugins.jobs.test_jobs import ended, wait_job
from tests.plugins.users.linkswaps import Swaps, point

from junction.plugins.jobs.archive import write_zip
from junction.plugins.jobs.folders import Reporter, open_folder
from junction.plugins.jobs.notebooks import WorkerFailed, partial_name, resolve_notebook, run_worker
from junction.plugins.users.homes import HOMES
from junction.testing import app_client, user_headers

pytestmark = pytest.mark.anyio

SECRET = b"BOB-SECRET"


def notebook(path: Path, source: str) -> None:
    """A notebook of one code cell, with the python3 kernelspec."""
    made = nbformat.v4.new_notebook()  # type: ignore[no-untyped-call]  # untyped library
    made.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3"}
    made.cells.append(nbformat.v4.new_code_cell(source))  # type: ignore[no-untyped-call]
    nbformat.write(made, path)  # type: ignore[no-untyped-call]  # untyped library


@dataclass
class World:
    """Ana and Bob with homes under ``root``; Bob's folder ``dir`` holds a secret."""

    client: httpx.AsyncClient
    root: Path
    ana: dict[str, str]
    swaps: Swaps

    @property
    def ana_home(self) -> Path:
        return self.root / "home" / "ana"

    @property
    def bob_home(self) -> Path:
        return self.root / "home" / "bob"

    def bob_files(self) -> dict[str, bytes]:
        """Every file and folder under Bob's home, with the bytes of the files."""
        found = {}
        for folder, dirs, files in os.walk(self.bob_home):
            for name in dirs:
                found[str(Path(folder, name).relative_to(self.bob_home)) + "/"] = b""
            for name in files:
                path = Path(folder, name)
                found[str(path.relative_to(self.bob_home))] = path.read_bytes()
        return found

    async def submit(self, body: dict[str, Any]) -> httpx.Response:
        """Submit a job as Ana; the swap set up for it must have happened."""
        response = await self.client.post("/api/jobs", headers=self.ana, json=body)
        assert not self.swaps.pending, f"{body} never checked the swapped path"
        return response

    async def finished(self, response: httpx.Response) -> dict[str, Any]:
        """The job a 202 answer started, once it has ended."""
        assert response.status_code == 202, response.text
        job_id = response.json()["id"]
        return await wait_job(self.client, job_id, ended)


@pytest.fixture
async def world(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[World]:
    root = tmp_path / "root"
    root.mkdir()
    async with app_client(
        enable=["users", "contents", "jobs"],
        root_dir=root,
        database_url=f"sqlite+aiosqlite:///{tmp_path / 'junction.db'}",
    ) as admin:
        ana = await user_headers(admin, "ana")
        bob = await user_headers(admin, "bob")
        for who in (ana, bob):  # first use makes the home
            assert (await admin.get("/api/contents/home", headers=who)).status_code == 200
        swaps = Swaps()
        swaps.install(admin.app.state.services.get(HOMES), monkeypatch)
        made = World(admin, root, ana, swaps)
        (made.bob_home / "dir").mkdir()
        (made.bob_home / "dir" / "s2.txt").write_bytes(SECRET)
        notebook(made.bob_home / "secret.ipynb", f"print({SECRET.decode()!r})")
        for name in ("realdir", "src", "outdir"):
            (made.ana_home / name).mkdir()
        (made.ana_home / "realdir" / "mine.txt").write_text("ANA")
        (made.ana_home / "src" / "f.txt").write_text("ANA")
        notebook(made.ana_home / "real.ipynb", "print('ANA')")
        yield made


async def test_a_zip_of_a_link_swapped_after_the_check_archives_nothing_of_another_home(
    world: World,
) -> None:
    link = world.ana_home / "jx"
    point(link, "realdir")
    fair = await world.finished(await world.submit({"kind": "zip", "path": "home/ana/jx"}))
    assert fair["status"] == "completed", fair
    archive = await world.client.get(f"/api/jobs/{fair['id']}/result", headers=world.ana)
    assert zipfile.ZipFile(io.BytesIO(archive.content)).namelist() == ["mine.txt"]

    world.swaps.after_check("home/ana/realdir", link, "../bob/dir")
    raced = await world.submit({"kind": "zip", "path": "home/ana/jx"})
    assert raced.status_code == 404, raced.text
    assert raced.json()["message"] == "No such file or directory: home/ana/jx"
    jobs = (await world.client.get("/api/jobs", headers=world.ana)).json()
    assert [job["id"] for job in jobs] == [fair["id"]]  # nothing was queued


async def test_a_copy_into_a_link_swapped_after_the_check_writes_nothing_in_another_home(
    world: World,
) -> None:
    link = world.ana_home / "jy"
    point(link, "outdir")
    body = {"kind": "copy", "path": "home/ana/src", "to": "home/ana/jy/c1"}
    fair = await world.finished(await world.submit(body))
    assert fair["status"] == "completed", fair
    assert fair["to"] == "home/ana/outdir/c1"
    assert (world.ana_home / "outdir" / "c1" / "f.txt").read_text() == "ANA"

    before = world.bob_files()
    world.swaps.after_check("home/ana/outdir/c2", link, "../bob/dir")
    raced = await world.submit({**body, "to": "home/ana/jy/c2"})
    assert raced.status_code == 404, raced.text
    assert world.bob_files() == before


async def test_a_copy_from_a_link_swapped_after_the_check_copies_nothing_of_another_home(
    world: World,
) -> None:
    link = world.ana_home / "jx"
    point(link, "realdir")
    world.swaps.after_check("home/ana/realdir", link, "../bob/dir")
    raced = await world.submit({"kind": "copy", "path": "home/ana/jx", "to": "home/ana/c3"})
    assert raced.status_code == 404, raced.text
    assert not (world.ana_home / "c3").exists()


async def test_a_run_through_links_writes_where_they_lead(world: World) -> None:
    point(world.ana_home / "n.ipynb", "real.ipynb")
    point(world.ana_home / "jz", "outdir")
    run = {"kind": "run", "path": "home/ana/n.ipynb", "to": "home/ana/jz/r.ipynb"}
    fair = await world.finished(await world.submit(run))
    assert fair["status"] == "completed", fair
    assert fair["to"] == "home/ana/outdir/r.ipynb"
    path = world.ana_home / "outdir" / "r.ipynb"
    written = nbformat.read(path, as_version=4)  # type: ignore[no-untyped-call]  # untyped
    assert written.cells[0].outputs[0]["text"] == "ANA\n"


NOTEBOOK_RACES = [
    # (the job, the path whose check is followed by the swap, the link, its swapped target)
    (
        {"kind": "run", "path": "home/ana/n.ipynb", "to": "home/ana/jz/r2.ipynb"},
        "home/ana/outdir/r2.ipynb",
        "jz",
        "../bob/dir",
    ),
    (
        {"kind": "run", "path": "home/ana/n.ipynb", "to": "home/ana/r3.ipynb"},
        "home/ana/real.ipynb",
        "n.ipynb",
        "../bob/secret.ipynb",
    ),
    (
        {"kind": "export", "path": "home/ana/n.ipynb", "format": "script"},
        "home/ana/real.ipynb",
        "n.ipynb",
        "../bob/secret.ipynb",
    ),
    (
        {
            "kind": "export",
            "path": "home/ana/real.ipynb",
            "format": "script",
            "to": "home/ana/jz/e.py",
        },
        "home/ana/outdir/e.py",
        "jz",
        "../bob/dir",
    ),
]


@pytest.mark.parametrize(("body", "checked", "name", "target"), NOTEBOOK_RACES)
async def test_notebook_jobs_through_links_swapped_after_the_check_touch_nothing_of_another_home(
    world: World, body: dict[str, Any], checked: str, name: str, target: str
) -> None:
    point(world.ana_home / "n.ipynb", "real.ipynb")
    point(world.ana_home / "jz", "outdir")
    before = world.bob_files()
    world.swaps.after_check(checked, world.ana_home / name, target)
    raced = await world.submit(body)
    assert raced.status_code == 404, raced.text
    assert (await world.client.get("/api/jobs", headers=world.ana)).json() == []
    assert world.bob_files() == before
    assert list((world.ana_home / "outdir").iterdir()) == []


@pytest.mark.parametrize("replaced", ["notebook", "folder"])
async def test_a_notebook_replaced_by_a_link_after_the_check_is_not_read(
    tmp_path: Path, replaced: str
) -> None:
    """The worker reads the notebook only where it was judged to be: a link put there
    since (the notebook or its folder renamed away) fails the job instead."""
    root = tmp_path.resolve()
    (root / "ana" / "nbs").mkdir(parents=True)
    (root / "bob").mkdir()
    notebook(root / "ana" / "nbs" / "n.ipynb", "print('ANA')")
    notebook(root / "bob" / "n.ipynb", f"print({SECRET.decode()!r})")
    source = resolve_notebook(root, "ana/nbs/n.ipynb")
    if replaced == "notebook":
        (root / "ana" / "nbs" / "n.ipynb").rename(root / "ana" / "moved.ipynb")
        point(root / "ana" / "nbs" / "n.ipynb", "../../bob/n.ipynb")
    else:
        (root / "ana" / "nbs").rename(root / "ana" / "moved")
        point(root / "ana" / "nbs", "../bob")
    target = tmp_path / "out.export"
    order = {
        "kind": "export",
        "source": str(source),
        "target": str(target),
        "partial": str(partial_name(target, "job")),
        "store": True,
        "overwrite": False,
        "format": "script",
        "kernel_name": None,
        "timeout": None,
    }
    with pytest.raises(WorkerFailed, match="moved or replaced"):
        await run_worker(order, Reporter())
    assert not target.exists()


def test_a_folder_re_pointed_after_it_was_opened_is_not_what_the_job_reads(
    tmp_path: Path,
) -> None:
    """Once judged, the job reads the folder it opened: replacing it (or a link on the
    way) by a link to another folder afterwards changes nothing."""
    root = tmp_path.resolve()
    (root / "ana" / "realdir").mkdir(parents=True)
    (root / "ana" / "realdir" / "mine.txt").write_text("ANA")
    (root / "bob").mkdir()
    (root / "bob" / "s2.txt").write_bytes(SECRET)
    point(root / "ana" / "jx", "realdir")
    held = open_folder(root, "ana/jx")
    try:
        assert held.api == "ana/realdir"
        point(root / "ana" / "jx", "../bob")
        (root / "ana" / "realdir").rename(root / "ana" / "moved")
        point(root / "ana" / "realdir", "../bob")
        target = tmp_path / "out.zip"
        write_zip(held.path, target, Reporter(), include_hidden=False)
        assert zipfile.ZipFile(target).namelist() == ["mine.txt"]
    finally:
        os.close(held.fd)
