"""Telling local filesystems from network mounts, and reading small files inline only there."""

from __future__ import annotations

import errno
from pathlib import Path
from typing import Any

import pytest

from junction.errors import HTTPError
from junction.plugins.contents import filesystem
from junction.plugins.contents.filesystem import LocalContents
from junction.plugins.contents.mounts import filesystem_type, is_local
from junction.plugins.contents.reading import open_regular
from junction.plugins.contents.settings import ContentsSettings

pytestmark = pytest.mark.anyio

MOUNTINFO = """\
22 1 8:1 / / rw,relatime shared:1 - ext4 /dev/sda1 rw
30 22 0:40 / /home/shared rw,relatime shared:9 - nfs4 server:/export rw,vers=4.2
31 30 0:41 / /home/shared/scratch rw shared:10 - tmpfs tmpfs rw
32 22 0:42 / /mnt/my\\040drive rw - fuse.sshfs host:/data rw
33 22 0:43 / /srv rw - ext4 /dev/sdb1 rw
34 22 0:44 / /srv rw - cifs //host/share rw
"""


@pytest.fixture
def mountinfo(tmp_path: Path) -> str:
    path = tmp_path / "mountinfo"
    path.write_text(MOUNTINFO)
    return str(path)


@pytest.mark.parametrize(
    ("path", "kind"),
    [
        ("/", "ext4"),
        ("/home/alice", "ext4"),
        ("/home/shared", "nfs4"),
        ("/home/shared/notebooks", "nfs4"),
        ("/home/shared/scratch/x", "tmpfs"),
        ("/home/sharedother", "ext4"),  # a prefix of the name is not a parent directory
        ("/mnt/my drive/data", "fuse.sshfs"),  # octal escapes in mount points
        ("/srv/x", "cifs"),  # the later of two mounts on one point is the visible one
    ],
)
def test_the_innermost_mount_names_the_filesystem(mountinfo: str, path: str, kind: str) -> None:
    assert filesystem_type(path, mountinfo) == kind


def test_network_filesystems_and_an_unreadable_table_count_as_remote(
    mountinfo: str, tmp_path: Path
) -> None:
    assert is_local("/home/alice", mountinfo)
    assert not is_local("/home/shared/x", mountinfo)
    assert not is_local("/mnt/my drive", mountinfo)
    assert not is_local("/", str(tmp_path / "missing"))


def _contents(root: Path, *, local: bool, monkeypatch: pytest.MonkeyPatch) -> LocalContents:
    monkeypatch.setattr(filesystem, "is_local", lambda _path: local)
    return LocalContents(root, ContentsSettings())


async def _threads_used(
    contents: LocalContents, path: str, monkeypatch: pytest.MonkeyPatch, **options: Any
) -> int:
    """How many worker-thread hops ``contents.get(path, **options)`` took."""
    calls = 0
    run = contents._run

    async def counting(func: object, *args: object) -> object:
        nonlocal calls
        calls += 1
        return await run(func, *args)  # type: ignore[arg-type]

    monkeypatch.setattr(contents, "_run", counting)
    model = await contents.get(path, **options)
    assert model["path"] == path
    if options.get("hash"):
        assert model["hash"]
    return calls


async def test_small_files_on_a_local_disk_are_read_without_a_thread(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "small.txt").write_text("hello\n")
    (tmp_path / "big.txt").write_bytes(b"x" * (ContentsSettings().inline_read_bytes + 1))
    (tmp_path / "a.ipynb").write_text(
        '{"cells": [], "metadata": {}, "nbformat": 4, "nbformat_minor": 5}'
    )
    local = _contents(tmp_path, local=True, monkeypatch=monkeypatch)
    assert await _threads_used(local, "small.txt", monkeypatch) == 0
    assert (await local.get("small.txt"))["content"] == "hello\n"
    assert await _threads_used(local, "big.txt", monkeypatch) == 1
    assert await _threads_used(local, "a.ipynb", monkeypatch) == 1
    assert await _threads_used(local, "", monkeypatch) == 1


async def test_small_files_on_a_network_mount_still_go_through_a_thread(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "small.txt").write_text("hello\n")
    remote = _contents(tmp_path, local=False, monkeypatch=monkeypatch)
    assert remote.inline_read_bytes == 0
    assert await _threads_used(remote, "small.txt", monkeypatch) == 1


async def test_what_a_thread_would_refuse_or_read_long_goes_to_the_thread(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "small.txt").write_text("hello\n")
    deep = tmp_path.joinpath(*["d"] * 40)
    deep.mkdir(parents=True)
    (deep / "f.txt").write_text("deep\n")
    local = _contents(tmp_path, local=True, monkeypatch=monkeypatch)
    assert await _threads_used(local, "/".join(["d"] * 40) + "/f.txt", monkeypatch) == 1
    # hashing without the content reads the whole file: a thread
    assert await _threads_used(local, "small.txt", monkeypatch, content=False, hash=True) == 1
    local.root_dev = -2  # as if the file lived on a mount below the root
    assert await _threads_used(local, "small.txt", monkeypatch) == 1


async def test_a_file_that_grew_after_its_stat_is_read_whole_by_the_thread(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    target = tmp_path / "growing.txt"
    target.write_text("short\n")
    local = _contents(tmp_path, local=True, monkeypatch=monkeypatch)
    opened = open_regular

    def growing(*args: Any, **kwargs: Any) -> Any:
        if target.stat().st_size < 100_000:
            target.write_bytes(b"y" * 100_000)  # grows between the stat and the read
        return opened(*args, **kwargs)

    monkeypatch.setattr(filesystem, "open_regular", growing)
    assert await _threads_used(local, "growing.txt", monkeypatch) == 1
    assert (await local.get("growing.txt"))["content"] == "y" * 100_000


async def test_an_error_on_the_inline_path_is_the_same_4xx_as_in_the_thread(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "locked.txt").write_text("secret\n")

    def refused(*args: Any, **kwargs: Any) -> Any:
        raise PermissionError(errno.EACCES, "Permission denied")

    monkeypatch.setattr(filesystem, "open_regular", refused)
    errors = []
    for local in (True, False):
        contents = _contents(tmp_path, local=local, monkeypatch=monkeypatch)
        with pytest.raises(HTTPError) as caught:
            await contents.get("locked.txt")
        errors.append((type(caught.value), caught.value.status_code))
    assert errors[0] == errors[1]
    assert errors[0][1] == 403
