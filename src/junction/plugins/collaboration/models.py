"""Wire models of the collaboration routes."""

from __future__ import annotations

from pydantic import BaseModel, Field

__all__ = ["ExecuteRequest", "SessionRequest", "SessionResponse"]


class SessionRequest(BaseModel):
    """Body of ``PUT /api/collaboration/session/{path}``."""

    format: str = Field(description="'json' (notebooks), 'text' or 'base64'.")
    type: str = Field(description="'notebook', 'file' or 'blob'.")


class SessionResponse(BaseModel):
    """The file's room: ``{format}:{type}:{fileId}``, and this server process's id."""

    format: str
    type: str
    fileId: str = Field(description="Stable id of the file (uuid).")  # noqa: N815 - wire name
    sessionId: str = Field(description="Id of this server process.")  # noqa: N815 - wire name


class ExecuteRequest(BaseModel):
    """Body of ``POST /api/kernels/{kernel_id}/execute``: run a cell of a shared notebook."""

    cell_id: str = Field(description="Id of the cell in the notebook.")
    document_id: str = Field(description="Room id of the notebook (json:notebook:<fileId>).")
