"""Wire models of the sessions API, field for field as Jupyter clients expect them.

Request bodies ignore unknown keys (JupyterLab sends the session ``id`` back in its PATCH
bodies) but check the types of the keys they know.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field, model_validator

from junction.plugins.kernels.models import Kernel

__all__ = ["CreateSession", "KernelRef", "NotebookRef", "Session", "UpdateSession"]


class NotebookRef(BaseModel):
    """The legacy ``notebook`` field: the document of a ``notebook`` session."""

    path: str
    name: str | None


class Session(BaseModel):
    """A session as ``GET /api/sessions/{id}`` reports it, with its kernel's live model."""

    id: str = Field(description="UUID of the session.")
    path: str = Field(description="API path of the document (or any unique key a client picks).")
    name: str | None = Field(description="Display name, usually the document's file name.")
    type: str = Field(description="'notebook', 'console', 'file', ...")
    kernel: Kernel
    notebook: NotebookRef | None = Field(
        None,
        description="Legacy copy of path and name, present only for type 'notebook'.",
        exclude_if=lambda value: value is None,
    )


class KernelRef(BaseModel):
    """Which kernel a session should use: a running one by ``id``, or a new one by ``name``."""

    model_config = ConfigDict(extra="ignore")

    id: str | None = Field(None, description="A running kernel to attach; wins over name.")
    name: str | None = Field(None, description="Kernel spec of a new kernel (default when unset).")


def _legacy_notebook(data: Any) -> Any:
    """Turn the pre-2015 ``{"notebook": {"path": ...}}`` shape into ``path`` + ``type``."""
    if isinstance(data, dict) and isinstance(data.get("notebook"), dict):
        notebook = data["notebook"]
        data = {**data, "type": "notebook"}
        if "path" in notebook:
            data["path"] = notebook["path"]
    return data


class CreateSession(BaseModel):
    """Body of ``POST /api/sessions``."""

    model_config = ConfigDict(extra="ignore")

    path: str = Field(description="API path of the document; its directory is the kernel's cwd.")
    type: str = Field(description="'notebook', 'console', 'file', ...")
    name: str | None = Field(None, description="Display name.")
    kernel: KernelRef = Field(default_factory=KernelRef)

    @model_validator(mode="before")
    @classmethod
    def _accept_legacy(cls, data: Any) -> Any:
        return _legacy_notebook(data)


class UpdateSession(BaseModel):
    """Body of ``PATCH /api/sessions/{id}``; every field is optional, null means unchanged."""

    model_config = ConfigDict(extra="ignore")

    path: str | None = Field(None, description="New document path (after a rename).")
    name: str | None = Field(None, description="New display name.")
    type: str | None = Field(None, description="New session type.")
    kernel: KernelRef | None = Field(
        None, description="{id} attaches a running kernel; {name} starts a new one."
    )

    @model_validator(mode="before")
    @classmethod
    def _accept_legacy(cls, data: Any) -> Any:
        return _legacy_notebook(data)
