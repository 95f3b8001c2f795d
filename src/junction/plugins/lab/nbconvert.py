"""Notebook export through nbconvert, when it is installed (``pip install nbconvert``).

``formats`` lists the exporters JupyterLab offers under File > Save and Export As;
``convert`` runs one on a notebook in a worker thread. An export that produces extra files
(images of the markdown exporter...) comes back as a zip, as in Jupyter.
"""

from __future__ import annotations

import importlib
import io
import logging
import zipfile
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import anyio
import nbformat

from junction.errors import HTTPError, NotFound
from junction.plugins.contents.service import ContentsService

__all__ = ["Converted", "ExportFailed", "Nbconvert"]

log = logging.getLogger("junction.lab")


class ExportFailed(HTTPError):
    """nbconvert raised while exporting (a missing LaTeX, a template error...) (500)."""

    status_code = 500
    default_reason = "Export Failed"


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

    async def export(self, format_name: str, path: str) -> Converted | None:
        """Export the notebook at API path ``path``; None if ``path`` is not a notebook.

        Raises :class:`NotFound` (no such file, no contents plugin, unknown format) and
        :class:`ExportFailed`.
        """
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

        ``directory`` lets exporters find files next to the notebook. Raises
        :class:`NotFound` for an unknown format (or no nbconvert) and :class:`ExportFailed`.
        """
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
    try:
        exporters = _exporters()
    except ImportError:
        raise NotFound("notebook export needs nbconvert: pip install nbconvert") from None
    try:
        exporter = exporters.get_exporter(format_name)()
    except (NameError, ValueError):  # nbconvert's "unknown" and "disabled" errors
        raise NotFound(f"no exporter for format {format_name!r}") from None
    stem = name.rsplit(".", 1)[0] if "." in name else name
    metadata: dict[str, Any] = {"name": stem}
    if modified is not None:
        metadata["modified_date"] = modified.strftime("%B %d, %Y")
    if directory is not None:
        metadata["path"] = str(directory)
    try:
        node = nbformat.from_dict(notebook)  # type: ignore[no-untyped-call]  # untyped library
        output, resources = exporter.from_notebook_node(node, resources={"metadata": metadata})
    except Exception as exc:
        log.exception("exporting %s as %s failed", name, format_name)
        raise ExportFailed(f"nbconvert failed: {exc}") from None
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
