"""The kernel's name of an open descriptor: the real path, whatever link led there."""

from __future__ import annotations

import os
from pathlib import Path

from junction.fdpaths import descriptor_name, find_fd_path


def test_an_open_folder_is_named_where_it_really_is(tmp_path: Path) -> None:
    real = tmp_path / "real"
    real.mkdir()
    (tmp_path / "link").symlink_to("real")
    assert find_fd_path() is not None  # Linux: /proc/self/fd
    fd = os.open(tmp_path / "link", os.O_RDONLY | os.O_DIRECTORY)
    try:
        (tmp_path / "link").unlink()  # re-pointing the way there changes nothing
        (tmp_path / "link").symlink_to("/")
        assert descriptor_name(fd) == str(real.resolve())
    finally:
        os.close(fd)
    assert descriptor_name(-1) is None  # not a descriptor: nothing to name
