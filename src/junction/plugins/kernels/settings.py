"""Settings of the kernels plugin (section ``[kernels]``)."""

from __future__ import annotations

from pydantic import Field

from junction.plugin import PluginSettings

__all__ = ["KernelsSettings"]

MiB = 1 << 20


class KernelsSettings(PluginSettings):
    """Starting, watching, culling kernels, and their WebSockets."""

    default_kernel_name: str = Field(
        "python3", description="Kernel spec started when a client names none."
    )
    max_kernels: int | None = Field(
        None,
        ge=1,
        description="Most kernels running at once; starting another gets 403. None: no limit.",
    )
    allowed_env: list[str] = Field(
        default_factory=lambda: ["KERNEL_*"],
        description="Environment variables a client may set in POST /api/kernels 'env', as "
        "shell patterns ('KERNEL_*'); any other name gets 400. Empty refuses every 'env'.",
    )
    kernel_ready_timeout: float = Field(
        60.0, gt=0, description="Seconds a new or restarted kernel gets to answer kernel_info."
    )
    shutdown_wait_time: float = Field(
        3.0,
        gt=0,
        description="Seconds a kernel gets to exit after a shutdown request before it is killed.",
    )
    restart_limit: int = Field(
        5,
        ge=0,
        description="Automatic restarts of a kernel that keeps dying within 10 s of starting, "
        "before it is reported dead. 0 never restarts a dead kernel.",
    )
    monitor_interval: float = Field(
        1.0, gt=0, description="Seconds between checks that each kernel process is alive."
    )
    cull_idle_timeout: float = Field(
        0,
        ge=0,
        description="Shut down kernels idle (no output, no execution) this many seconds. 0: never.",
    )
    cull_interval: float = Field(
        300, gt=0, description="Seconds between checks for idle kernels to cull."
    )
    cull_connected: bool = Field(
        False, description="Also cull idle kernels that have WebSocket clients attached."
    )
    cull_busy: bool = Field(
        False, description="Also cull kernels that report busy (for runaway computations)."
    )
    reconnect_window: float = Field(
        120.0,
        ge=0,
        description="Seconds a WebSocket client that dropped may reconnect with the same "
        "session_id and receive every message it missed. 0: no replay.",
    )
    replay_buffer_bytes: int = Field(
        64 * MiB,
        ge=0,
        description="Most bytes of messages kept for one disconnected client; beyond this the "
        "oldest are dropped and the client is told how many on reconnect.",
    )
    client_queue_bytes: int = Field(
        128 * MiB,
        gt=0,
        description="Most bytes of output waiting for one connected client; a client that "
        "falls further behind is closed (1013) and may reconnect to resume.",
    )
    max_message_size: int | None = Field(
        None,
        gt=0,
        description="Largest WebSocket message a client may send, in bytes; larger ones close "
        "the socket (1009). None: the server's websocket_max_message_size.",
    )
