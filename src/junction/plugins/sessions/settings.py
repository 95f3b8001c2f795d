"""Settings of the sessions plugin (section ``[sessions]``)."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from junction.plugin import PluginSettings

__all__ = ["SessionsSettings"]


class SessionsSettings(PluginSettings):
    """Where sessions are kept, and whether clients may list them."""

    store: Literal["database", "memory"] = Field(
        "database",
        description="Session store. 'database': the table sessions_sessions in the server's "
        "database (database_url); 'memory' forgets sessions when the server stops. Either way "
        "a session whose kernel is gone (kernels stop with the server) is dropped when read.",
    )
    list_sessions: bool = Field(
        True, description="Answer GET /api/sessions; when false it gets 403."
    )
