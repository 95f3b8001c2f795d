"""Wire models of the kernels API, field for field as jupyter_server sends them."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, Field

__all__ = ["ExecutionState", "Kernel", "StartKernel"]

ExecutionState = Literal[
    "starting", "idle", "busy", "restarting", "autorestarting", "dead", "unknown"
]


class Kernel(BaseModel):
    """A running kernel as ``GET /api/kernels/{id}`` reports it."""

    id: str
    name: str
    last_activity: str = Field(description="ISO 8601 UTC time of the last message, with Z.")
    execution_state: str
    connections: int = 0
    reason: str | None = Field(None, description="Why the kernel is dead, when it is.")


class StartKernel(BaseModel):
    """Body of ``POST /api/kernels``; every field is optional."""

    name: str | None = Field(None, description="Kernel spec name; the default spec when unset.")
    path: str | None = Field(None, description="API path of the document; its directory is cwd.")
    env: dict[str, str] | None = Field(None, description="Extra environment (allow-listed).")
    kernel_id: str | None = Field(None, description="Client-chosen kernel id (a UUID).")
