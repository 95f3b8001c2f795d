"""The seed notebook (``kernels.seed_uri``): code run in every new kernel before clients get it.

The notebook is read once, when the plugin starts; a notebook that cannot be read stops the
server with a :class:`~junction.errors.ConfigError`. Its code cells run in order, in every new
kernel whose spec's language is the notebook's (``metadata.kernelspec.language`` or
``metadata.language_info.name``; a notebook naming no language seeds every kernel). The first
cell that fails fails the start with :class:`KernelSeedFailed`, naming the cell and its
exception. Restarts do not run the seed again: a restarted kernel starts afresh.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit
from urllib.request import url2pathname

from junction.errors import ConfigError
from junction.plugins.kernels.hub import KernelHub
from junction.plugins.kernels.service import KernelSeedFailed

__all__ = ["SeedCell", "SeedNotebook", "run_seed", "seed_path"]

log = logging.getLogger("junction.kernels")


@dataclass(frozen=True)
class SeedCell:
    """One code cell: its position in the notebook (1-based, counting every cell) and code."""

    number: int
    source: str


@dataclass(frozen=True)
class SeedNotebook:
    """The code cells of the seed notebook, and the language they are written in."""

    uri: str
    cells: tuple[SeedCell, ...]
    language: str | None

    def applies_to(self, spec_language: str | None) -> bool:
        """Whether kernels of a spec in ``spec_language`` are seeded."""
        if self.language is None:
            return True
        return (spec_language or "").lower() == self.language

    @classmethod
    def load(cls, uri: str, base: Path) -> SeedNotebook:
        """Read the notebook at ``uri`` (relative paths against ``base``); blocking.

        Raises :class:`ConfigError` when it cannot be read or is not a version 4 notebook.
        """
        path = seed_path(uri, base)
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            raise ConfigError(f"kernels.seed_uri: cannot read the notebook {path}: {exc}") from exc
        return cls.parse(uri, data)

    @classmethod
    def parse(cls, uri: str, data: Any) -> SeedNotebook:
        """The seed in a decoded notebook; raises :class:`ConfigError` if it is not one."""
        if not isinstance(data, dict) or data.get("nbformat") != 4:
            raise ConfigError(f"kernels.seed_uri: {uri} is not a version 4 Jupyter notebook")
        cells = data.get("cells")
        if not isinstance(cells, list):
            raise ConfigError(f"kernels.seed_uri: {uri} has no list of cells")
        code = []
        for number, cell in enumerate(cells, start=1):
            if not isinstance(cell, dict) or cell.get("cell_type") != "code":
                continue
            source = cell.get("source", "")
            if isinstance(source, list):
                source = "".join(str(line) for line in source)
            if not isinstance(source, str):
                raise ConfigError(f"kernels.seed_uri: cell {number} of {uri} has no source text")
            if source.strip():
                code.append(SeedCell(number, source))
        return cls(uri=uri, cells=tuple(code), language=_language(data.get("metadata")))


def seed_path(uri: str, base: Path) -> Path:
    """The file a ``seed_uri`` names: a path (relative to ``base``) or a ``file://`` URI."""
    parts = urlsplit(uri)
    if parts.scheme == "file":
        if parts.netloc not in ("", "localhost"):
            raise ConfigError(f"kernels.seed_uri: {uri} names another host")
        return Path(url2pathname(unquote(parts.path)))
    path = Path(uri).expanduser()
    return path if path.is_absolute() else base / path


def _language(metadata: Any) -> str | None:
    if not isinstance(metadata, dict):
        return None
    for key, field in (("kernelspec", "language"), ("language_info", "name")):
        section = metadata.get(key)
        if isinstance(section, dict) and isinstance(section.get(field), str) and section[field]:
            return str(section[field]).lower()
    return None


async def run_seed(hub: KernelHub, seed: SeedNotebook, kernel_name: str) -> None:
    """Run every code cell of ``seed`` on the kernel behind ``hub``, in order.

    Raises :class:`KernelSeedFailed` at the first cell that does not answer ``ok``. The caller
    bounds the time and watches the kernel process.
    """
    for cell in seed.cells:
        reply = await hub.run_code(cell.source)
        status = reply.get("status")
        if status == "ok":
            continue
        ename = str(reply.get("ename") or ("Aborted" if status == "aborted" else "Error"))
        evalue = str(reply.get("evalue") or "")
        message = (
            f"Kernel {kernel_name} failed to run its seed notebook (kernels.seed_uri "
            f"{seed.uri}): cell {cell.number} raised {ename}: {evalue}"
        )
        raise KernelSeedFailed(message, ename=ename, evalue=evalue)
