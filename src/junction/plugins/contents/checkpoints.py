"""File checkpoints: one saved copy per file, beside it in ``.ipynb_checkpoints/``.

``dir/name.ext`` has its checkpoint at ``dir/.ipynb_checkpoints/name-checkpoint.ext`` with
id ``checkpoint``, where Jupyter keeps it, so checkpoints made by other Jupyter servers are
found and restored. Creating and restoring copy through an :class:`AtomicFile`: a
checkpoint is never half-written and a restore replaces the file whole.

Blocking; called from worker threads under the file's path lock.
"""

from __future__ import annotations

import contextlib
import os
import stat

from junction.plugins.contents.atomic import BLOCK, AtomicFile, WriteBlock, copy_into
from junction.plugins.contents.entries import iso_from_ns
from junction.plugins.contents.models import Model
from junction.plugins.contents.reading import open_regular
from junction.plugins.contents.service import CheckpointNotFound

__all__ = ["CHECKPOINT_DIR", "CHECKPOINT_ID", "FileCheckpoints"]

CHECKPOINT_DIR = ".ipynb_checkpoints"
CHECKPOINT_ID = "checkpoint"


def checkpoint_path(os_path: str) -> str:
    """Where the checkpoint of the file at ``os_path`` lives."""
    directory, name = os.path.split(os_path)
    base, ext = os.path.splitext(name)
    return os.path.join(directory, CHECKPOINT_DIR, f"{base}-{CHECKPOINT_ID}{ext}")


class FileCheckpoints:
    """Creates, lists, restores and deletes checkpoints of files."""

    def __init__(self, *, write_block: WriteBlock, durable: bool) -> None:
        self.write_block = write_block
        self.durable = durable

    def _model(self, st: os.stat_result) -> Model:
        return {"id": CHECKPOINT_ID, "last_modified": iso_from_ns(st.st_mtime_ns)}

    def create(self, os_path: str) -> Model:
        """Copy the file to its checkpoint (replacing the previous one)."""
        target = checkpoint_path(os_path)
        os.makedirs(os.path.dirname(target), exist_ok=True)
        with (
            open_regular(os_path, os.path.basename(os_path)) as source,
            AtomicFile(
                os.path.dirname(target), write_block=self.write_block, durable=self.durable
            ) as copy,
        ):
            copy_into(copy, source.fileno(), BLOCK)
            copy.commit(os.path.basename(target))
        return self._model(os.stat(target))

    def list(self, os_path: str) -> list[Model]:
        """The checkpoints of the file: zero or one."""
        try:
            return [self._model(os.stat(checkpoint_path(os_path)))]
        except FileNotFoundError:
            return []

    def restore(self, os_path: str, checkpoint_id: str, api: str) -> None:
        """Replace the file by its checkpoint, keeping the file's permission bits."""
        source_path = self._existing(os_path, checkpoint_id, api)
        try:
            mode: int | None = stat.S_IMODE(os.stat(os_path).st_mode)
        except FileNotFoundError:
            mode = None
        with (
            open_regular(source_path, api) as source,
            AtomicFile(
                os.path.dirname(os_path), write_block=self.write_block, durable=self.durable
            ) as copy,
        ):
            copy_into(copy, source.fileno(), BLOCK)
            copy.commit(os.path.basename(os_path), mode=mode)

    def delete(self, os_path: str, checkpoint_id: str, api: str) -> None:
        """Remove the checkpoint; raises CheckpointNotFound."""
        os.unlink(self._existing(os_path, checkpoint_id, api))

    def delete_all(self, os_path: str) -> None:
        """Remove the file's checkpoint if there is one (the file was deleted)."""
        with contextlib.suppress(FileNotFoundError):
            os.unlink(checkpoint_path(os_path))

    def rename_all(self, old_os_path: str, new_os_path: str) -> None:
        """Move the file's checkpoint along with it (the file was renamed)."""
        old = checkpoint_path(old_os_path)
        if not os.path.exists(old):
            return
        new = checkpoint_path(new_os_path)
        os.makedirs(os.path.dirname(new), exist_ok=True)
        os.replace(old, new)

    def _existing(self, os_path: str, checkpoint_id: str, api: str) -> str:
        path = checkpoint_path(os_path)
        if checkpoint_id != CHECKPOINT_ID or not os.path.isfile(path):
            raise CheckpointNotFound(f"checkpoint {checkpoint_id!r} of {api!r} does not exist")
        return path
