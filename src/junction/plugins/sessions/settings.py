"""Settings of the sessions plugin (section ``[sessions]``)."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from junction.plugin import PluginSettings

__all__ = ["SessionsSettings"]


class SessionsSettings(PluginSettings):
    """Where sessions are kept, and whether clients may list them."""

    store: Literal["memory"] = Field(
        "memory",
        description="Session store. 'memory' forgets sessions when the server stops, as "
        "kernels stop with it too.",
    )
    list_sessions: bool = Field(
        True, description="Answer GET /api/sessions; when false it gets 403."
    )
