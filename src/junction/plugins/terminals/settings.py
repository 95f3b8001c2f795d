"""Settings of the terminals plugin (section ``[terminals]``)."""

from __future__ import annotations

from pydantic import Field, field_validator

from junction.plugin import PluginSettings

__all__ = ["MAX_SIZE", "TerminalsSettings"]

KiB = 1 << 10
MAX_SIZE = 1000
"""Largest number of rows or columns a client may ask for; larger sizes are clamped."""


class TerminalsSettings(PluginSettings):
    """Shells on pseudo-terminals, their WebSockets, their culling."""

    shell_command: list[str] | None = Field(
        None,
        description="Command each terminal runs, as a list of arguments. None: the user's "
        "login shell ($SHELL, else the password database, else /bin/sh), as a login shell.",
    )
    cull_inactive_timeout: float = Field(
        0,
        ge=0,
        description="Terminate terminals with no input or output for this many seconds. 0: never.",
    )
    cull_interval: float = Field(
        300, gt=0, description="Seconds between checks for inactive terminals to cull."
    )
    scrollback_bytes: int = Field(
        64 * KiB,
        ge=0,
        description="Most recent output kept per terminal (characters) and replayed to every "
        "client that connects. 0: no replay.",
    )
    client_queue_bytes: int = Field(
        256 * KiB,
        gt=0,
        description="Output waiting for one client before it counts as full. While every "
        "client is full the terminal is not read (the program blocks on output); a client "
        "four times this far behind the others is closed (1013) and may reconnect.",
    )

    max_message_size: int = Field(
        1 << 20,
        ge=1 << 10,
        description="Largest terminal WebSocket frame (characters); a larger one closes the "
        "socket (1009). The server's websocket_max_message_size caps it too.",
    )
    max_terminals: int | None = Field(
        256,
        ge=1,
        description="Most terminals at once on the server (each holds a pseudo-terminal of "
        "the host's limited supply); starting another gets 403. None: no limit.",
    )

    @field_validator("shell_command")
    @classmethod
    def _not_empty(cls, value: list[str] | None) -> list[str] | None:
        return value or None
