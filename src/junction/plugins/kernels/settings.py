"""Settings of the kernels plugin (section ``[kernels]``)."""

from __future__ import annotations

from pathlib import Path
from urllib.parse import urlsplit

from pydantic import Field, field_validator

from junction.errors import ConfigError
from junction.plugin import PluginSettings
from junction.plugins.kernels.seeding import SeedNotebook

__all__ = ["KernelsSettings"]

MiB = 1 << 20


class KernelsSettings(PluginSettings):
    """Starting, watching, culling kernels, and their WebSockets."""

    default_kernel_name: str = Field(
        "python3", description="Kernel spec started when a client names none."
    )
    force_kernel_name: str | None = Field(
        None,
        description="Kernel spec every start uses, whatever the client asked for. None: the "
        "client's choice (default_kernel_name when it names none).",
    )
    max_kernels: int | None = Field(
        None,
        ge=1,
        description="Most kernels clients may have at once; starting another gets 403. Pool "
        "kernels (prespawn_count) make way for client starts. None: no limit.",
    )
    prespawn_count: int = Field(
        0,
        ge=0,
        description="Warm kernels of the default spec kept waiting, seeded, for starts that ask "
        "for nothing else (no env, no kernel_id, the root as working directory). 0: no pool.",
    )
    seed_uri: str | None = Field(
        None,
        description="A notebook (local path or file:// URI) whose code cells run in every new "
        "kernel of its language before the kernel is handed out. None: no seed.",
    )
    list_kernels: bool = Field(True, description="Answer GET /api/kernels; when false it gets 403.")
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

    keep_on_shutdown: bool = Field(
        False,
        description="Leave kernels running when the server stops (and after a crash, for "
        "orphan_grace seconds), so a server started later on the same database reattaches "
        "them with the same ids. False: kernels stop with the server.",
    )
    orphan_grace: float = Field(
        300.0,
        ge=0,
        description="With keep_on_shutdown: seconds the kernels of a crashed (SIGKILLed) "
        "server wait for a new server to reattach them before they are killed. 0: killed at "
        "once, as without keep_on_shutdown.",
    )
    lease_timeout: float = Field(
        30.0,
        gt=0,
        description="Seconds without a heartbeat after which another server counts a server "
        "as gone and adopts its kernels (on the same host a dead pid counts at once). Each "
        "server renews its heartbeat every sixth of this.",
    )
    remote_restart_timeout: float = Field(
        60.0,
        gt=0,
        description="Seconds a server waits for the server running a kernel to restart it "
        "(POST /api/kernels/{id}/restart of a kernel another server runs) before answering "
        "503; the request stands, and that server, or the one adopting the kernel, still "
        "carries it out.",
    )
    reattach_timeout: float = Field(
        10.0,
        gt=0,
        description="Seconds a kernel left by an earlier server gets to answer before it is "
        "counted gone and its record forgotten.",
    )

    @field_validator("force_kernel_name")
    @classmethod
    def _no_empty_name(cls, value: str | None) -> str | None:
        return value or None

    @field_validator("seed_uri")
    @classmethod
    def _local_seed(cls, value: str | None) -> str | None:
        if value is None or not value.strip():
            return None
        scheme = urlsplit(value).scheme
        if scheme not in ("", "file") and len(scheme) > 1:  # one letter: a Windows drive
            raise ValueError(f"seed_uri {value!r} must be a local path or a file:// URI")
        try:  # read it now, so a bad notebook stops the server before anything starts
            SeedNotebook.load(value, Path.cwd())
        except ConfigError as exc:
            raise ValueError(str(exc).removeprefix("kernels.seed_uri: ")) from None
        return value
