"""File checkpoints: one saved copy per file, beside it in ``.ipynb_checkpoints/``.

``dir/name.ext`` has its checkpoint at ``dir/.ipynb_checkpoints/name-checkpoint.ext`` with
id ``checkpoint``, where Jupyter keeps it, so checkpoints made by other Jupyter servers are
found and restored. Creating and restoring copy through an :class:`AtomicFile`: a
checkpoint is never half-written and a restore replaces the file whole.

Everything works from the file's open directory (checked by the caller, see
``RootPaths.parent``). The checkpoint directory is opened relative to it and checked where
it really is: it may be a link, but only to a place inside the root whose hidden segments
are checkpoint directories themselves (``cp/.ipynb_checkpoints -> /elsewhere`` is a 403,
``-> ../.ssh`` a 400), so checkpoints never read, write or delete outside the root or in
hidden places, and (multi-user mode) only where the requesting user reaches. The
checkpoint file itself is never followed if it is a link: a checkpoint is a regular file
this server wrote.

Blocking; called from worker threads under the file's path lock.
"""

from __future__ import annotations

import contextlib
import errno
import os
import stat
from collections.abc import Iterator

from junction.plugins.contents.atomic import BLOCK, AtomicFile, WriteBlock, copy_into
from junction.plugins.contents.entries import iso_from_ns
from junction.plugins.contents.models import Model
from junction.plugins.contents.paths import DIRECTORY_FLAGS, Access, RootPaths
from junction.plugins.contents.reading import READ_FLAGS, regular_file
from junction.plugins.contents.service import (
    REACH_GUARD,
    CheckpointNotFound,
    FileNotFound,
    HiddenPathRefused,
    OutsideRoot,
)

__all__ = ["CHECKPOINT_DIR", "CHECKPOINT_ID", "FileCheckpoints", "checkpoint_name"]

CHECKPOINT_DIR = ".ipynb_checkpoints"
CHECKPOINT_ID = "checkpoint"


def checkpoint_name(name: str) -> str:
    """The name of the checkpoint of file ``name`` inside the checkpoint directory."""
    base, ext = os.path.splitext(name)
    return f"{base}-{CHECKPOINT_ID}{ext}"


class FileCheckpoints:
    """Creates, lists, restores and deletes checkpoints of files.

    Every method takes the file's open, checked directory ``dir_fd``, the file's ``name``
    in it and its API path ``api`` (for messages).
    """

    def __init__(self, paths: RootPaths, *, write_block: WriteBlock, durable: bool) -> None:
        self.paths = paths
        self.write_block = write_block
        self.durable = durable

    def _model(self, st: os.stat_result) -> Model:
        return {"id": CHECKPOINT_ID, "last_modified": iso_from_ns(st.st_mtime_ns)}

    def _atomic(self, dir_fd: int) -> AtomicFile:
        return AtomicFile(dir_fd, write_block=self.write_block, durable=self.durable)

    @contextlib.contextmanager
    def _directory(
        self, dir_fd: int, api: str, *, create: bool, access: Access = Access.WRITE
    ) -> Iterator[int | None]:
        """The open checkpoint directory beside a file (None if missing and not created),
        to read from or (``access``) to write in.

        Raises OutsideRoot or HiddenPathRefused when it is a link leading outside the root
        or to a hidden place, and the reach guard's errors (multi-user mode) when it leads
        where the requesting user does not reach.
        """
        if create:
            with contextlib.suppress(FileExistsError):
                os.mkdir(CHECKPOINT_DIR, dir_fd=dir_fd)
        try:
            fd = os.open(CHECKPOINT_DIR, DIRECTORY_FLAGS, dir_fd=dir_fd)
        except FileNotFoundError:
            if create:  # it exists (mkdir said so) but cannot be followed
                raise FileNotFound(
                    f"the checkpoint directory of {api!r} is a broken link"
                ) from None
            fd = None
        if fd is None:
            yield None
            return
        try:
            self._check(fd, api, access)
            yield fd
        finally:
            os.close(fd)

    def _check(self, fd: int, api: str, access: Access) -> None:
        real = self.paths.where(fd)
        if real is None:
            return
        if not self.paths.contains(real):
            raise OutsideRoot(
                f"the checkpoint directory of {api!r} leads outside the root directory "
                "through a link"
            )
        relative = self.paths.relative(real)
        if not self.paths.allow_hidden and any(
            part.startswith(".") and part != CHECKPOINT_DIR for part in relative.split("/")
        ):
            raise HiddenPathRefused(
                f"the checkpoint directory of {api!r} is a link to a hidden directory"
            )
        guard = REACH_GUARD.get()
        if guard is not None:
            guard.judge(relative, api, access.value)

    def create(self, dir_fd: int, name: str, api: str) -> Model:
        """Copy the file to its checkpoint (replacing the previous one)."""
        with (
            regular_file(
                self.paths.open(name, READ_FLAGS, api, Access.READ, dir_fd=dir_fd), api
            ) as source,
            self._directory(dir_fd, api, create=True) as checkpoints,
        ):
            assert checkpoints is not None
            with self._atomic(checkpoints) as copy:
                copy_into(copy, source.fileno(), BLOCK)
                st = copy.commit(checkpoint_name(name))
        return self._model(st)

    def list(self, dir_fd: int, name: str, api: str) -> list[Model]:
        """The checkpoints of the file: zero or one."""
        with self._directory(dir_fd, api, create=False, access=Access.READ) as checkpoints:
            if checkpoints is None:
                return []
            st = self._stat(checkpoints, name)
            return [] if st is None else [self._model(st)]

    def restore(self, dir_fd: int, name: str, checkpoint_id: str, api: str) -> None:
        """Replace the file by its checkpoint, keeping the file's permission bits."""
        try:
            mode: int | None = stat.S_IMODE(os.stat(name, dir_fd=dir_fd).st_mode)
        except FileNotFoundError:
            mode = None
        with self._directory(dir_fd, api, create=False, access=Access.READ) as checkpoints:
            if checkpoints is None or checkpoint_id != CHECKPOINT_ID:
                raise self._missing(checkpoint_id, api)
            try:
                fd = os.open(checkpoint_name(name), READ_FLAGS | os.O_NOFOLLOW, dir_fd=checkpoints)
            except OSError as exc:
                if exc.errno in (errno.ENOENT, errno.ELOOP):
                    raise self._missing(checkpoint_id, api) from None
                raise
            if not stat.S_ISREG(os.fstat(fd).st_mode):
                os.close(fd)
                raise self._missing(checkpoint_id, api)
            with regular_file(fd, api) as source, self._atomic(dir_fd) as copy:
                copy_into(copy, source.fileno(), BLOCK)
                copy.commit(name, mode=mode)

    def delete(self, dir_fd: int, name: str, checkpoint_id: str, api: str) -> None:
        """Remove the checkpoint; raises CheckpointNotFound."""
        with self._directory(dir_fd, api, create=False) as checkpoints:
            if (
                checkpoints is None
                or checkpoint_id != CHECKPOINT_ID
                or self._stat(checkpoints, name) is None
            ):
                raise self._missing(checkpoint_id, api)
            os.unlink(checkpoint_name(name), dir_fd=checkpoints)

    def delete_all(self, dir_fd: int, name: str, api: str) -> None:
        """Remove the file's checkpoint if there is one (the file was deleted)."""
        with self._directory(dir_fd, api, create=False) as checkpoints:
            if checkpoints is not None and self._stat(checkpoints, name) is not None:
                with contextlib.suppress(FileNotFoundError):
                    os.unlink(checkpoint_name(name), dir_fd=checkpoints)

    def rename_all(
        self, old_dir_fd: int, old_name: str, new_dir_fd: int, new_name: str, api: str
    ) -> None:
        """Move the file's checkpoint along with it (the file was renamed to ``api``)."""
        with self._directory(old_dir_fd, api, create=False) as old:
            if old is None or self._stat(old, old_name) is None:
                return
            with self._directory(new_dir_fd, api, create=True) as new:
                assert new is not None
                os.replace(
                    checkpoint_name(old_name),
                    checkpoint_name(new_name),
                    src_dir_fd=old,
                    dst_dir_fd=new,
                )

    @staticmethod
    def _stat(checkpoints: int, name: str) -> os.stat_result | None:
        """The checkpoint's ``stat``, or None if there is no regular file by its name."""
        try:
            st = os.stat(checkpoint_name(name), dir_fd=checkpoints, follow_symlinks=False)
        except FileNotFoundError:
            return None
        return st if stat.S_ISREG(st.st_mode) else None

    @staticmethod
    def _missing(checkpoint_id: str, api: str) -> CheckpointNotFound:
        return CheckpointNotFound(f"checkpoint {checkpoint_id!r} of {api!r} does not exist")
