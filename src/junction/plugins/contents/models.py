"""Wire models of the contents API.

Responses are plain dicts encoded with orjson (a listing of 100,000 entries must not pay for
one pydantic object each); :class:`ContentsModel` documents their shape in the OpenAPI
schema and :data:`Model` is their type in code. Request bodies are pydantic models that
ignore unknown keys, as Jupyter clients send whole models back.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

__all__ = [
    "CheckpointModel",
    "ContentsModel",
    "CreateRequest",
    "Model",
    "Pagination",
    "RenameRequest",
    "SaveRequest",
]

Model = dict[str, Any]
"""A contents model as sent on the wire (see :class:`ContentsModel` for its keys)."""


class Pagination(BaseModel):
    """Where a paginated directory listing stands; present only when ``limit`` was given."""

    limit: int = Field(description="The page size asked for.")
    after: str | None = Field(description="The cursor this page starts after (exclusive).")
    next: str | None = Field(
        description="Pass as ``after`` to get the next page; null on the last page. By name "
        "order the last name of the page; by directory order an opaque cursor."
    )
    total: int | None = Field(
        description="Names in the directory after hidden/glob filtering (entries skipped for "
        "safety at read time, such as links leaving the root, are still counted). By "
        "directory order null unless the page read the directory to its end."
    )


class ByteRange(BaseModel):
    """The byte span of a file a ranged read returned; present only for ranged reads."""

    offset: int = Field(description="First byte returned.")
    length: int = Field(description="Number of bytes returned (before text/base64 encoding).")


class ContentsModel(BaseModel):
    """A file, notebook or directory. Every key is always present."""

    name: str = Field(description="Last path segment ('' for the root).")
    path: str = Field(description="API path relative to the root, '/'-separated.")
    type: Literal["directory", "file", "notebook"]
    writable: bool
    created: str = Field(description="ISO 8601, UTC, 'Z' suffix.")
    last_modified: str = Field(description="ISO 8601, UTC, 'Z' suffix.")
    size: int | None = Field(description="Bytes; null for directories.")
    mimetype: str | None
    format: Literal["json", "text", "base64"] | None
    content: Any = Field(
        description="null unless asked for: a list of models (directories), the notebook "
        "JSON (notebooks), a string (files)."
    )
    hash: str | None = Field(description="Hex digest of the whole file when hash=1.")
    hash_algorithm: str | None
    pagination: Pagination | None = Field(None, description="Only on paginated directory listings.")
    range: ByteRange | None = Field(None, description="Only on ranged file reads.")


class CheckpointModel(BaseModel):
    """A saved copy of a file; files keep one, with id 'checkpoint'."""

    id: str
    last_modified: str


class SaveRequest(BaseModel):
    """Body of ``PUT /api/contents/{path}``: a model to save, or one chunk of an upload.

    Files need ``format`` ('text' or 'base64') and string ``content``; notebooks need
    ``content`` as nbformat JSON; directories need neither. ``chunk`` numbers an upload's
    pieces 1, 2, ... with -1 for the last (chunk 1 starts the upload over).
    """

    model_config = ConfigDict(extra="ignore", strict=True)

    type: str | None = None
    format: str | None = None
    content: Any = None
    chunk: int | None = None
    copy_from: str | None = None
    path: str | None = None


class CreateRequest(BaseModel):
    """Body of ``POST /api/contents/{dir}``: a new untitled item, or a copy."""

    model_config = ConfigDict(extra="ignore", strict=True)

    type: str | None = Field(None, description="'file' (default), 'notebook' or 'directory'.")
    ext: str | None = Field(None, description="Extension of a new file, e.g. '.py'.")
    copy_from: str | None = Field(None, description="API path of a file or folder to copy.")


class RenameRequest(BaseModel):
    """Body of ``PATCH /api/contents/{path}``: where to move the item."""

    model_config = ConfigDict(extra="ignore", strict=True)

    path: str = Field(description="The new API path.")
