"""Notebook export through nbconvert, when it is installed (``pip install nbconvert``).

``formats`` lists the exporters JupyterLab offers under File > Save and Export As;
``convert`` runs one on a notebook in a worker thread. An export that produces extra files
(images of the markdown exporter...) comes back as a zip, as in Jupyter.

Only the registered exporters (the ``nbconvert.exporters`` entry points nbconvert lists as
enabled) can be asked for, by their plain names: nbconvert itself would also import any
dotted Python name it is given, which a URL must never reach.
"""

from __future__ import annotations

import importlib
import io
import logging
import re
import zipfile
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path, PurePosixPath
from typing import Any

import anyio

from junction.errors import HTTPError, NotFound
from junction.plugins.contents.service import ContentsService

__all__ = ["FORMAT_NAME", "Converted", "ExportFailed", "Nbconvert", "UnknownFormat"]

log = logging.getLogger("junction.lab")

FORMAT_NAME = re.compile(r"\w+", re.ASCII)
"""What an exporter name looks like; anything else (a dotted import path) is refused unseen."""

_NO_NBCONVERT = "notebook export needs nbconvert: pip install nbconvert"


class ExportFailed(HTTPError):
    """nbconvert raised while exporting (a missing LaTeX, a template error...) (500).

    The message is fixed: nbconvert's own text may carry server paths, so it goes to the log.
    """

    status_code = 500
    default_reason = "Export Failed"


class UnknownFormat(NotFound):
    """No registered exporter has that name, or nbconvert is not installed (404)."""


@dataclass(frozen=True, slots=True)
class Converted:
    """An export: bytes, media type, and the file name a download should get."""

    body: bytes
    media_type: str
    filename: str


class Nbconvert:
    """nbconvert's exporters, listed once (importing nbconvert takes a second) and cached.

    ``contents`` (when the contents plugin runs) is where :meth:`export` reads notebooks.
    """

    def __init__(self, contents: ContentsService | None = None) -> None:
        self.contents = contents
        self._formats: dict[str, dict[str, str]] | None = None
        self._lock = anyio.Lock()

    async def formats(self) -> dict[str, dict[str, str]]:
        """``{exporter name: {"output_mimetype": ...}}``; empty without nbconvert."""
        async with self._lock:
            if self._formats is None:
                self._formats = await anyio.to_thread.run_sync(_list_formats)
            return self._formats

    async def check_format(self, format_name: str) -> str:
        """``format_name`` if it names a registered exporter; raises :class:`UnknownFormat`.

        Called before anything else by every export, so nothing but a listed name ever
        reaches nbconvert (which would import a dotted name as a Python object).
        """
        if not FORMAT_NAME.fullmatch(format_name):
            raise UnknownFormat(f"no exporter for format {format_name[:100]!r}")
        formats = await self.formats()
        if not formats:
            raise UnknownFormat(_NO_NBCONVERT)
        if format_name not in formats:
            raise UnknownFormat(f"no exporter for format {format_name!r}")
        return format_name

    async def export(self, format_name: str, path: str) -> Converted | None:
        """Export the notebook at API path ``path``; None if ``path`` is not a notebook.

        Raises :class:`NotFound` (no such file, no contents plugin), :class:`UnknownFormat`
        and :class:`ExportFailed`.
        """
        format_name = await self.check_format(format_name)
        if self.contents is None:
            raise NotFound("exporting files needs the contents plugin")
        model = await self.contents.get(path)
        if model.get("type") != "notebook":
            return None
        directory = (await self.contents.os_path(path)).parent
        modified = _parse_time(model.get("last_modified"))
        return await self.convert(
            format_name,
            model["content"],
            name=model["name"],
            directory=directory,
            modified=modified,
        )

    async def convert(
        self,
        format_name: str,
        notebook: dict[str, Any],
        *,
        name: str,
        directory: Path | None = None,
        modified: datetime | None = None,
    ) -> Converted:
        """Export ``notebook`` (nbformat JSON) named ``name`` with exporter ``format_name``.

        ``directory`` lets exporters find files next to the notebook; only the last part of
        ``name`` is used. Raises :class:`UnknownFormat` and :class:`ExportFailed`.
        """
        format_name = await self.check_format(format_name)
        name = PurePosixPath(name.replace("\\", "/")).name or "notebook.ipynb"
        return await anyio.to_thread.run_sync(
            _convert, format_name, notebook, name, directory, modified
        )


def _parse_time(value: Any) -> datetime | None:
    if isinstance(value, datetime):
        return value
    if isinstance(value, str):
        try:
            return datetime.fromisoformat(value.replace("Z", "+00:00"))
        except ValueError:
            return None
    return None


def _exporters() -> Any:
    """nbconvert's exporter registry (optional and only partly typed, hence ``Any``)."""
    return importlib.import_module("nbconvert.exporters.base")


def _list_formats() -> dict[str, dict[str, str]]:
    try:
        exporters = _exporters()
    except ImportError:
        log.warning("nbconvert is not installed; notebook export is unavailable")
        return {}
    result = {}
    for export_name in exporters.get_export_names():
        if not FORMAT_NAME.fullmatch(export_name):
            log.warning("ignoring nbconvert exporter with an odd name %r", export_name)
            continue
        try:
            exporter = exporters.get_exporter(export_name)
        except (NameError, ValueError):
            continue
        result[export_name] = {"output_mimetype": str(exporter.output_mimetype or "")}
    return result


def _convert(
    format_name: str,
    notebook: dict[str, Any],
    name: str,
    directory: Path | None,
    modified: datetime | None,
) -> Converted:
    if not FORMAT_NAME.fullmatch(format_name):  # checked before; never let a dot through
        raise UnknownFormat(f"no exporter for format {format_name[:100]!r}")
    try:
        exporters = _exporters()
    except ImportError:
        raise UnknownFormat(_NO_NBCONVERT) from None
    try:
        exporter = exporters.get_exporter(format_name)()
    except (NameError, ValueError):  # nbconvert's "unknown" and "disabled" errors
        raise UnknownFormat(f"no exporter for format {format_name!r}") from None
    stem = name.rsplit(".", 1)[0] if "." in name else name
    metadata: dict[str, Any] = {"name": stem}
    if modified is not None:
        metadata["modified_date"] = modified.strftime("%B %d, %Y")
    if directory is not None:
        metadata["path"] = str(directory)
    import nbformat  # only exports need it: keeps it out of startup

    try:
        node = nbformat.from_dict(notebook)  # type: ignore[no-untyped-call]  # untyped library
        output, resources = exporter.from_notebook_node(node, resources={"metadata": metadata})
    except Exception:
        log.exception("exporting %s as %s failed", name, format_name)
        raise ExportFailed(
            f"nbconvert could not export the notebook as {format_name}; "
            "the server log has the details"
        ) from None
    extension = resources.get("output_extension") or ""
    body = output.encode("utf-8") if isinstance(output, str) else bytes(output)
    extra_files: dict[str, bytes] = resources.get("outputs") or {}
    if extra_files:
        buffer = io.BytesIO()
        with zipfile.ZipFile(buffer, "w", compression=zipfile.ZIP_DEFLATED) as archive:
            archive.writestr(stem + extension, body)
            for filename, data in extra_files.items():
                archive.writestr(Path(filename).name, data)
        return Converted(buffer.getvalue(), "application/zip", stem + ".zip")
    media_type = str(exporter.output_mimetype or "application/octet-stream")
    return Converted(body, media_type, stem + extension)
