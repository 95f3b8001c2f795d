"""Folder trees through directory descriptors: size, copy, move across file systems."""

from __future__ import annotations

import errno
import os
import stat
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from junction.plugins.contents import trees
from junction.plugins.contents.trees import copy_file_at, copy_tree, move_across, tree_size


def _open(path: Path) -> int:
    return os.open(path, os.O_RDONLY | os.O_DIRECTORY)


@pytest.fixture
def tree(tmp_path: Path) -> Path:
    """``src`` with a file, a read-only folder, a nested file and a link."""
    source = tmp_path / "src"
    (source / "ro" / "deep").mkdir(parents=True)
    (source / "a.txt").write_text("a" * 10)
    (source / "ro" / "deep" / "b.bin").write_bytes(b"b" * 20)
    os.symlink("../a.txt", source / "ro" / "link")
    (source / "ro" / "deep" / "b.bin").chmod(0o640)
    (source / "ro").chmod(0o555)
    return source


@pytest.fixture
def fds(tmp_path: Path, tree: Path) -> Iterator[tuple[int, int]]:
    """The source folder and ``tmp_path``, open."""
    source, parent = _open(tree), _open(tmp_path)
    try:
        yield source, parent
    finally:
        os.close(source)
        os.close(parent)
        if (tree / "ro").exists():
            (tree / "ro").chmod(0o755)


def _listing(top: Path) -> dict[str, object]:
    found: dict[str, object] = {}
    for path in sorted(top.rglob("*")):
        relative = str(path.relative_to(top))
        if path.is_symlink():
            found[relative] = ("link", os.readlink(path))
        elif path.is_dir():
            found[relative] = ("dir", stat.S_IMODE(path.stat().st_mode))
        else:
            found[relative] = (path.read_bytes(), stat.S_IMODE(path.stat().st_mode))
    return found


def test_tree_size_counts_files_and_stops_past_the_limit(fds: tuple[int, int]) -> None:
    source, _ = fds
    size = tree_size(source, 1000)
    assert size == 30 + len("../a.txt")  # the link counts as itself
    assert tree_size(source, 5) > 5


def test_copy_tree_keeps_modes_and_links_and_refuses_an_existing_name(
    tmp_path: Path, tree: Path, fds: tuple[int, int]
) -> None:
    source, parent = fds
    copy_tree(source, parent, "copy")
    assert _listing(tmp_path / "copy") == _listing(tree)
    (tmp_path / "copy" / "ro").chmod(0o755)
    with pytest.raises(FileExistsError):
        copy_tree(source, parent, "copy")
    assert (tmp_path / "copy" / "a.txt").read_text() == "a" * 10  # untouched


def test_a_failed_copy_leaves_nothing(
    tmp_path: Path, fds: tuple[int, int], monkeypatch: pytest.MonkeyPatch
) -> None:
    source, parent = fds
    copied: list[str] = []

    def disk_full_at_the_second_file(*args: Any) -> bool:
        if copied:
            raise OSError(errno.ENOSPC, "No space left on device")
        copied.append(args[1])
        return copy_file_at(*args)

    monkeypatch.setattr(trees, "copy_file_at", disk_full_at_the_second_file)
    with pytest.raises(OSError, match="No space left") as raised:
        copy_tree(source, parent, "copy")
    assert raised.value.errno == errno.ENOSPC
    assert copied
    assert sorted(os.listdir(tmp_path)) == ["src"]


def test_move_across_moves_folders_files_and_links(
    tmp_path: Path, tree: Path, fds: tuple[int, int]
) -> None:
    _, parent = fds
    (tree / "ro").chmod(0o755)
    before = _listing(tree)
    dest = tmp_path / "dest"
    dest.mkdir()
    (dest / "taken").write_text("keep")
    target = _open(dest)
    try:
        with pytest.raises(FileExistsError):
            move_across(parent, "src", target, "taken")
        assert (dest / "taken").read_text() == "keep"
        assert _listing(tree) == before
        move_across(parent, "src", target, "moved")
        assert not tree.exists()
        assert _listing(dest / "moved") == before
        source = _open(dest / "moved")
        try:
            move_across(source, "a.txt", target, "a.txt")
            move_across(source, "ro", target, "ro")
        finally:
            os.close(source)
        assert (dest / "a.txt").read_text() == "a" * 10
        assert os.readlink(dest / "ro" / "link") == "../a.txt"
        assert os.listdir(dest / "moved") == []
    finally:
        os.close(target)
