"""The directory every server serves: listing trees, a big text file, a small one.

Made fresh for each run in a temporary directory under ``build/bench/`` and removed at the end.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path

from bench.environments import BUILD_DIR

__all__ = ["Fixtures"]

_LINE = b"The quick brown fox jumps over the lazy dog. 0123456789 abcdefghij\n"


@dataclass
class Fixtures:
    """Paths (relative to ``root``) of what the scenarios read."""

    root: Path
    listings: dict[int, str]
    big_file: str | None
    big_file_bytes: int
    small_file: str
    probe_dir: str = "probe"
    """Three files: a listing with ``limit=1`` shows whether a server paginates."""

    @classmethod
    def create(cls, listing_sizes: list[int], big_file_mb: int) -> Fixtures:
        """Write the fixtures; ``listing_sizes`` are file counts of the listing directories."""
        BUILD_DIR.mkdir(parents=True, exist_ok=True)
        root = Path(tempfile.mkdtemp(prefix="data-", dir=BUILD_DIR))
        listings: dict[int, str] = {}
        for count in listing_sizes:
            name = f"list-{count}"
            directory = root / name
            directory.mkdir()
            for index in range(count):
                fd = os.open(directory / f"file-{index:06d}.txt", os.O_CREAT | os.O_WRONLY, 0o644)
                os.write(fd, b"x\n")
                os.close(fd)
            listings[count] = name
        (root / "small.txt").write_bytes(_LINE * 15)  # about 1 KB
        (root / "probe").mkdir()
        for name in ("a.txt", "b.txt", "c.txt"):
            (root / "probe" / name).write_bytes(b"x\n")
        big_file = None
        size = 0
        if big_file_mb:
            big_file = "big.txt"
            block = _LINE * ((1 << 20) // len(_LINE)) + b"\n" * ((1 << 20) % len(_LINE))
            with (root / big_file).open("wb") as out:
                for _ in range(big_file_mb):
                    out.write(block)
            size = big_file_mb << 20
        return cls(root, listings, big_file, size, "small.txt")

    def remove(self) -> None:
        """Delete the whole tree."""
        shutil.rmtree(self.root, ignore_errors=True)
