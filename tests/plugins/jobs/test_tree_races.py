"""Zip and copy jobs against folders changed under them while they run.

A user who can change their own folders while a job works on them must not make the job
write outside its destination (by swapping the copy's staging folder for a link), read
another user's metadata or listing (by swapping a folder on the way to a file, or a folder
about to be listed), or hang for ever (by putting a FIFO where a file was). Each race is
made certain: the point where the workers reach each entry (``folders.reached``), the per-file
copy (``copying.copy_checked``) or ``os.scandir`` is wrapped to make the change at exactly
the moment it matters.

Real folders and files on disk, real worker threads; the deep tree goes through the server.
"""

from __future__ import annotations

import os
import threading
import zipfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from tests.plugins.jobs.test_jobs import ended, wait_job

from junction.plugins.jobs import copying, folders
from junction.plugins.jobs.archive import UnportableName, write_zip
from junction.plugins.jobs.copying import copy_folder
from junction.plugins.jobs.folders import Cancelled, Entry, FolderChanged, Reporter, snapshot
from junction.testing import app_client

SECRET = b"BOB-SECRET"


def tree(root: Path) -> tuple[Path, Path]:
    """Ana's folder ``src`` (a few folders, then files) and Bob's home with a secret."""
    source = root / "ana" / "src"
    for name in ("d1", "d2", "d3"):
        (source / name).mkdir(parents=True)
    (source / "d1" / "in.txt").write_text("ANA")
    (source / "e.txt").write_text("PLANTED")
    bob = root / "bob"
    bob.mkdir()
    (bob / "s.txt").write_bytes(SECRET)
    return source, bob


def everything(folder: Path) -> dict[str, bytes | None]:
    """Every entry under ``folder`` (links not followed), with the bytes of the files."""
    found: dict[str, bytes | None] = {}
    for base, dirs, files in os.walk(folder):
        for name in [*dirs, *files]:
            path = Path(base, name)
            key = path.relative_to(folder).as_posix()
            found[key] = path.read_bytes() if path.is_file() and not path.is_symlink() else None
    return found


def in_thread(work: Callable[[], Any], unblock: Callable[[], None]) -> BaseException | None:
    """Run ``work`` in a thread; what it raised, None if it returned. Fails when it has not
    ended within 30 s (after ``unblock``-ing it, so no thread is left behind)."""
    raised: list[BaseException] = []

    def run() -> None:
        try:
            work()
        except BaseException as exc:
            raised.append(exc)

    worker = threading.Thread(target=run, daemon=True)
    worker.start()
    worker.join(30)
    if worker.is_alive():
        unblock()
        worker.join(30)
        pytest.fail("the worker blocked")
    return raised[0] if raised else None


def test_a_copy_whose_staging_folder_is_swapped_for_a_link_writes_nothing_through_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    source, bob = tree(tmp_path)
    out = tmp_path / "ana" / "out"
    out.mkdir()
    before = everything(bob)
    swapped: list[Path] = []

    def swap(entry: Entry) -> None:
        if swapped:
            return
        (staging,) = out.glob(".c1.copy-*")
        staging.rename(out / "moved")
        staging.symlink_to(bob)
        swapped.append(staging)

    monkeypatch.setattr(folders, "reached", swap)
    with pytest.raises(FolderChanged, match="staging folder was moved or replaced"):
        copy_folder(source, out / "c1", Reporter(), include_hidden=False, job_id="j1")
    assert swapped
    assert everything(bob) == before
    assert sorted(p.name for p in out.iterdir()) == sorted(["moved", swapped[0].name])
    assert swapped[0].is_symlink()  # left as it was, never followed to clean up
    assert (out / "moved" / "e.txt").read_text() == "PLANTED"  # the copy stayed in Ana's folder


@pytest.mark.parametrize("kind", ["zip", "copy"])
@pytest.mark.parametrize("cancel", [False, True])
def test_a_fifo_put_in_place_of_a_file_never_blocks_the_job(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, kind: str, cancel: bool
) -> None:
    source = tmp_path / "src"
    source.mkdir()
    (source / "a.txt").write_text("A")
    (source / "zz").write_text("Z")
    (source / "zzz").write_text("ZZZ")
    reporter = Reporter()

    def fifo(entry: Entry) -> None:
        if entry.name == "zz":
            (source / "zz").unlink()
            os.mkfifo(source / "zz")
            if cancel:
                reporter.cancel()

    def unblock() -> None:
        os.close(os.open(source / "zz", os.O_WRONLY | os.O_NONBLOCK))

    monkeypatch.setattr(folders, "reached", fifo)
    target = tmp_path / ("out.zip" if kind == "zip" else "copy")
    if kind == "zip":
        raised = in_thread(
            lambda: write_zip(source, target, reporter, include_hidden=False), unblock
        )
    else:
        raised = in_thread(
            lambda: copy_folder(source, target, reporter, include_hidden=False, job_id="j2"),
            unblock,
        )
    if cancel:
        assert isinstance(raised, Cancelled), raised
    else:
        assert isinstance(raised, FolderChanged), raised
        assert str(raised) == "zz was removed while the folder was read"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["src"]  # nothing partial left


def test_a_copy_takes_metadata_from_the_file_it_read_not_from_where_a_path_leads(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    source = tmp_path / "ana" / "cs"
    (source / "sub").mkdir(parents=True)
    mine = source / "sub" / "big"
    mine.write_text("ana")
    mine.chmod(0o640)
    os.utime(mine, ns=(1_600_000_000 * 10**9, 1_600_000_000 * 10**9))
    (source / "zbig").write_text("ana too")
    bobs = tmp_path / "bob" / "dir"
    bobs.mkdir(parents=True)
    (bobs / "big").write_text("bob")
    (bobs / "big").chmod(0o604)
    os.utime(bobs / "big", ns=(978_307_200 * 10**9, 978_307_200 * 10**9))
    os.setxattr(bobs / "big", "user.secret", b"BOBXATTR")  # tmpfs and ext4 have user xattrs
    real_copy = folders.copy_checked

    def copy_then_swap(source_file: Any, sink: Any, entry: Entry, reporter: Reporter) -> None:
        if entry.name == "zbig":  # back as it was: the final snapshot sees no change
            (source / "sub").unlink()
            (source / "sub.real").rename(source / "sub")
        real_copy(source_file, sink, entry, reporter)
        if entry.name == "sub/big":  # copied from Ana's file; now 'sub' leads to Bob's
            (source / "sub").rename(source / "sub.real")
            (source / "sub").symlink_to(bobs)

    monkeypatch.setattr(copying, "copy_checked", copy_then_swap)
    copy_folder(source, tmp_path / "ana" / "c", Reporter(), include_hidden=False, job_id="j3")
    copied = tmp_path / "ana" / "c" / "sub" / "big"
    assert copied.read_text() == "ana"
    assert oct(copied.stat().st_mode & 0o777) == oct(0o640)
    assert copied.stat().st_mtime_ns == mine.stat().st_mtime_ns
    assert "user.secret" not in os.listxattr(copied)


class _Listed:
    """A folder's listing taken in full, handed out as ``os.scandir`` hands it out."""

    def __init__(self, entries: list[os.DirEntry[str]]) -> None:
        self._entries = iter(entries)

    def __enter__(self) -> _Listed:
        return self

    def __exit__(self, *exc: object) -> None:
        return None

    def __iter__(self) -> _Listed:
        return self

    def __next__(self) -> os.DirEntry[str]:
        return next(self._entries)


def test_a_folder_swapped_for_a_link_while_listed_shows_nothing_of_where_it_leads(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    source, bob = tree(tmp_path)
    real_scandir = os.scandir
    calls: list[Any] = []

    def scandir(path: Any) -> _Listed:
        calls.append(path)
        if len(calls) == 2:  # the top folder was listed: its folders now lead to Bob's home
            for name in ("d1", "d2", "d3"):
                (source / name).rename(source / f"{name}.real")
                (source / name).symlink_to(bob)
        with real_scandir(path) as listing:
            return _Listed(list(listing))

    monkeypatch.setattr(os, "scandir", scandir)
    with pytest.raises(FolderChanged, match=r"^d[123] was moved or replaced$"):
        snapshot(source, include_hidden=False)
    assert len(calls) == 2  # what it listed after the swap was Ana's folder, opened before


def deep(folder: Path, levels: int) -> None:
    """A chain of ``levels`` folders named ``a`` under ``folder`` (made without long paths)."""
    folder.mkdir()
    fd = os.open(folder, os.O_RDONLY | os.O_DIRECTORY)
    for _ in range(levels):
        os.mkdir("a", dir_fd=fd)
        inner = os.open("a", os.O_RDONLY | os.O_DIRECTORY, dir_fd=fd)
        os.close(fd)
        fd = inner
    os.close(fd)


def remove_deep(folder: Path) -> None:
    """Remove what :func:`deep` made, bottom up, without recursion."""
    chain = [os.open(folder, os.O_RDONLY | os.O_DIRECTORY)]
    while True:
        try:
            chain.append(os.open("a", os.O_RDONLY | os.O_DIRECTORY, dir_fd=chain[-1]))
        except FileNotFoundError:
            break
    os.close(chain.pop())
    while chain:
        fd = chain.pop()
        os.rmdir("a", dir_fd=fd)
        os.close(fd)
    folder.rmdir()


@pytest.mark.anyio
async def test_a_tree_too_deep_fails_the_job_clearly(tmp_path: Path) -> None:
    deep(tmp_path / "deep", 1500)
    try:
        async with app_client(root_dir=tmp_path, enable=["jobs"]) as client:
            for body in (
                {"kind": "zip", "path": "deep"},
                {"kind": "copy", "path": "deep", "to": "deep-copy"},
            ):
                job = (await client.post("/api/jobs", json=body)).json()
                job = await wait_job(client, job["id"], ended)
                assert job["status"] == "failed", job
                assert job["error"] == "the folder tree is deeper than 256 levels", job
        assert sorted(p.name for p in tmp_path.iterdir()) == ["deep"]
    finally:
        remove_deep(tmp_path / "deep")


def test_a_tree_of_the_deepest_allowed_level_is_archived(tmp_path: Path) -> None:
    deep(tmp_path / "deep", folders.MAX_DEPTH - 1)
    target = tmp_path / "deep.zip"
    write_zip(tmp_path / "deep", target, Reporter(), include_hidden=False)
    names = zipfile.ZipFile(target).namelist()
    assert len(names) == folders.MAX_DEPTH - 1
    assert max(names, key=len) == "a/" * (folders.MAX_DEPTH - 1)


@pytest.mark.parametrize("name", [b"C:\\Windows\\x.txt", b"\xff\xfe.txt"])
def test_a_name_an_archive_cannot_hold_as_it_is_fails_the_zip_clearly(
    tmp_path: Path, name: bytes
) -> None:
    source = tmp_path / "src"
    source.mkdir()
    (source / "fine.txt").write_text("x")
    with open(os.path.join(os.fsencode(source), name), "wb") as odd:
        odd.write(b"y")
    target = tmp_path / "out.zip"
    with pytest.raises(UnportableName, match="cannot archive"):
        write_zip(source, target, Reporter(), include_hidden=False)
    assert not target.exists()
    assert list(tmp_path.iterdir()) == [source]  # no partial archive left
