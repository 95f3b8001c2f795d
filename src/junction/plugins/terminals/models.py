"""Wire models of the terminals API."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

__all__ = ["Terminal", "TerminalCreate"]


class Terminal(BaseModel):
    """A running terminal, as ``/api/terminals`` returns it."""

    name: str = Field(description="The terminal's name, unique among running terminals.")
    last_activity: str = Field(description="Last input or output, ISO 8601 in UTC with a Z suffix.")


class TerminalCreate(BaseModel):
    """The optional body of ``POST /api/terminals``; unknown keys are ignored, as in Jupyter."""

    model_config = ConfigDict(extra="ignore")

    name: str | None = Field(
        None,
        description="Name of the new terminal (letters, digits, underscores). None: the lowest "
        "free integer.",
    )
    cwd: str | None = Field(
        None,
        description="Working directory: relative to the server root, or absolute inside it. "
        "None: the root.",
    )
