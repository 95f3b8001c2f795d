"""Notebooks: checked with nbformat before they are written, served as Jupyter serves them.

Saving (:func:`notebook_bytes`): the content must be an nbformat 4 object that passes
nbformat's schema validation, else :class:`InvalidNotebook` (400) and nothing is written.
Cells of nbformat 4.5+ that lack an ``id`` get one first, as nbformat's own ``normalize``
would (done here because ``normalize`` warns). The file is written by nbformat's v4 writer,
so the bytes match what other Jupyter servers write (one-space indent, sorted keys,
multi-line strings split into lists, transient metadata dropped).

Reading (:func:`notebook_from_bytes`): the JSON is parsed with orjson and multi-line
strings stored as lists are joined back into strings, which is the shape the contents API
has always served. Notebooks older than nbformat 4 are upgraded by nbformat; a JSON object
without an integer ``nbformat`` is unreadable, like invalid JSON.
"""

from __future__ import annotations

import secrets
from typing import TYPE_CHECKING, Any

import orjson

from junction.plugins.contents.service import InvalidNotebook

if TYPE_CHECKING:
    from types import ModuleType


def nbformat_module() -> ModuleType:
    """nbformat, imported on first use: with jsonschema it is ~10 MB and a slow import, which
    a server that never touches a notebook (a gateway, a file server) should not pay."""
    import nbformat
    import nbformat.v4

    return nbformat


__all__ = ["nbformat_module", "new_notebook_bytes", "notebook_bytes", "notebook_from_bytes"]


def _add_missing_ids(content: dict[str, Any]) -> None:
    if content.get("nbformat") != 4 or not isinstance(content.get("nbformat_minor"), int):
        return
    if content["nbformat_minor"] < 5 or not isinstance(content.get("cells"), list):
        return
    for cell in content["cells"]:
        if isinstance(cell, dict) and "id" not in cell:
            cell["id"] = secrets.token_hex(4)


def _describe(error: Exception) -> str:
    message = getattr(error, "message", None)
    where = "/".join(str(part) for part in getattr(error, "absolute_path", ()))
    if isinstance(message, str):
        return f"{message} (at {where})" if where else message
    if isinstance(error, KeyError):
        return f"missing key {error.args[0]!r}"
    return f"{type(error).__name__}: {error}"


def notebook_bytes(content: Any, api_path: str) -> bytes:
    """Validate notebook JSON and serialise it as Jupyter does; raises InvalidNotebook."""
    if not isinstance(content, dict):
        raise InvalidNotebook(f"notebook {api_path!r}: content must be a JSON object")
    if content.get("nbformat") != 4:
        raise InvalidNotebook(
            f"notebook {api_path!r}: only nbformat 4 can be saved, "
            f"got nbformat {content.get('nbformat')!r}"
        )
    _add_missing_ids(content)
    try:
        nbformat_module().validate(content)
    except Exception as error:  # nbformat raises KeyError/TypeError too on odd shapes
        raise InvalidNotebook(
            f"notebook {api_path!r} failed validation: {_describe(error)}"
        ) from None
    nbformat = nbformat_module()
    node = nbformat.from_dict(content)
    text: str = nbformat.v4.writes_json(node)
    return text.encode() + b"\n"


def new_notebook_bytes() -> bytes:
    """The bytes of a new, empty notebook."""
    empty = nbformat_module().v4.new_notebook()
    return notebook_bytes(dict(empty), "Untitled.ipynb")


def _is_json_mime(mime: str) -> bool:
    return mime == "application/json" or (
        mime.startswith("application/") and mime.endswith("+json")
    )


def _join_bundle(bundle: Any) -> None:
    if not isinstance(bundle, dict):
        return
    for mime, value in bundle.items():
        if (
            isinstance(value, list)
            and not _is_json_mime(mime)
            and all(isinstance(line, str) for line in value)
        ):
            bundle[mime] = "".join(value)


def _join_lines(notebook: dict[str, Any]) -> None:
    cells = notebook.get("cells")
    if not isinstance(cells, list):
        return
    for cell in cells:
        if not isinstance(cell, dict):
            continue
        source = cell.get("source")
        if isinstance(source, list) and all(isinstance(line, str) for line in source):
            cell["source"] = "".join(source)
        attachments = cell.get("attachments")
        if isinstance(attachments, dict):
            for bundle in attachments.values():
                _join_bundle(bundle)
        outputs = cell.get("outputs")
        if not isinstance(outputs, list):
            continue
        for output in outputs:
            if not isinstance(output, dict):
                continue
            if output.get("output_type") in ("execute_result", "display_data"):
                _join_bundle(output.get("data"))
            elif isinstance(output.get("text"), list):
                text = output["text"]
                if all(isinstance(line, str) for line in text):
                    output["text"] = "".join(text)


def notebook_from_bytes(data: bytes, api_path: str) -> dict[str, Any]:
    """Parse a notebook file for the contents API; raises InvalidNotebook if unreadable."""
    try:
        notebook = orjson.loads(data)
    except orjson.JSONDecodeError as error:
        raise InvalidNotebook(f"unreadable notebook {api_path!r}: {error}") from None
    if not isinstance(notebook, dict):
        raise InvalidNotebook(f"unreadable notebook {api_path!r}: not a JSON object")
    major = notebook.get("nbformat")
    if not isinstance(major, int) or isinstance(major, bool):
        raise InvalidNotebook(
            f"unreadable notebook {api_path!r}: no nbformat version (got {major!r})"
        )
    if major < 4:
        try:
            upgraded = nbformat_module().reads(data.decode(), as_version=4)
        except Exception as error:  # any failure of the old-format upgrade means unreadable
            raise InvalidNotebook(f"unreadable notebook {api_path!r}: {_describe(error)}") from None
        notebook = dict(orjson.loads(orjson.dumps(upgraded)))
    _join_lines(notebook)
    return notebook
