"""Wire models of the apps API."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

__all__ = ["App", "AppCreate", "AppFiles", "AppStatus", "Sharing"]

AppStatus = Literal["starting", "ready", "failed", "stopped"]
"""``stopped``: no process (never started, stopped, or culled; the next visit starts it);
``starting``: the process runs and its readiness check has not passed yet; ``ready``: traffic
is proxied to it; ``failed``: it exited or never became ready (``reason`` says why)."""


class Sharing(BaseModel):
    """Who may open an app besides its owner (administrators always may)."""

    model_config = ConfigDict(extra="forbid")

    users: list[str] = Field(default_factory=list, description="User names.")
    groups: list[str] = Field(default_factory=list, description="Group names.")
    authenticated: bool = Field(False, description="Anyone logged in to Junction.")
    public: bool = Field(
        False, description="Anyone, without logging in (explicit opt-in; off by default)."
    )


class AppCreate(BaseModel):
    """The body of ``POST /api/apps``: a framework and a file, or a command template."""

    model_config = ConfigDict(extra="forbid")

    name: str | None = Field(None, max_length=200, description="Display name.")
    framework: str | None = Field(None, description="A preset: streamlit, panel, bokeh, ...")
    path: str | None = Field(None, description="The app's file, relative to the server root.")
    command: list[str] | None = Field(
        None,
        min_length=1,
        description="A command template instead of a framework; must use '{port}' (or "
        "read the PORT environment variable).",
    )
    env: dict[str, str] = Field(default_factory=dict, description="Extra environment.")
    ready_path: str | None = Field(None, description="Readiness path (default: the preset's).")
    start_timeout: float | None = Field(None, gt=0, description="Seconds to become ready.")


class App(BaseModel):
    """An app: its definition, owner, status and the URL that opens it."""

    id: str
    name: str
    framework: str | None
    path: str | None
    command: list[str] = Field(description="The command; empty for those who may not manage it.")
    env: dict[str, str] = Field(
        description="Extra environment; empty for those who may not manage the app."
    )
    owner: str
    status: AppStatus
    reason: str | None = Field(None, description="Why it failed or stopped.")
    last_log: list[str] = Field(
        default_factory=list,
        description="Last output lines when it failed (only for those who may manage it).",
    )
    url: str = Field(description="Opens the app (through Junction, which grants access).")
    app_url: str = Field(description="The app's own origin (needs an access cookie).")
    sharing: Sharing
    restarts: int = 0
    created: str
    last_activity: str | None = None


class AppFiles(BaseModel):
    """The files of one folder that a framework preset would run ("Open as app")."""

    path: str = Field(description="The folder, relative to the server root.")
    files: dict[str, str] = Field(
        description="File name to preset: Python files importing a framework "
        "(streamlit, gradio, dash, panel, bokeh), notebooks for voila."
    )
