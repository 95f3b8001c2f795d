"""The ``copy`` job: a folder copied to a new path, in chunks, consistent or not at all.

The copy is made under a hidden temporary name beside the destination and renamed into place
only when every file was copied unchanged; a failure or cancellation removes it.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path
from typing import Any

from junction.plugins.jobs.folders import (
    Reporter,
    check_unchanged,
    compare,
    copy_checked,
    snapshot,
)

__all__ = ["copy_folder"]


def copy_folder(
    folder: Path, destination: Path, reporter: Reporter, *, include_hidden: bool, job_id: str
) -> dict[str, Any]:
    """Copy ``folder`` to ``destination`` (which must not exist); returns the entry count.

    Runs in a worker thread. Raises ``FolderChanged``, ``Cancelled`` or ``OSError``, after
    removing the partial copy; ``FileExistsError`` when the destination appeared meanwhile.
    """
    before = snapshot(folder, include_hidden=include_hidden)
    reporter.total = sum(entry.size for entry in before)
    staging = destination.with_name(f".{destination.name}.copy-{job_id}")
    try:
        staging.mkdir()
        for entry in before:
            reporter.check()
            target = staging / entry.name
            if entry.is_dir:
                target.mkdir()
                continue
            fd = os.open(folder / entry.name, os.O_RDONLY | os.O_NOFOLLOW)
            with os.fdopen(fd, "rb") as source, target.open("xb") as sink:
                check_unchanged(entry, os.fstat(fd))
                copy_checked(source, sink, entry, reporter)
            shutil.copystat(folder / entry.name, target, follow_symlinks=False)
        compare(before, snapshot(folder, include_hidden=include_hidden))
        if destination.exists():
            raise FileExistsError(f"{destination.name} appeared while the copy ran")
        staging.rename(destination)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return {"entries": len(before), "size": reporter.done}
