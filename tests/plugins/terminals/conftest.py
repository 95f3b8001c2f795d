"""Helpers for terminals tests: a real PtyTerminals service, and reading a client's output."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import anyio

from junction.plugins.terminals.manager import PtyTerminals
from junction.plugins.terminals.settings import TerminalsSettings
from junction.plugins.terminals.terminal import PtyTerminal, TerminalClient
from junction.reaper import Reaper

SHELL = ["/bin/sh"]
"""A plain POSIX shell: the same prompt and behaviour whatever the user's login shell."""


@asynccontextmanager
async def terminals(root: Path, **settings: Any) -> AsyncIterator[PtyTerminals]:
    """The terminals service over real PTYs, with its own reaper, stopped on exit."""
    settings.setdefault("shell_command", SHELL)
    reaper = Reaper()
    try:
        async with anyio.create_task_group() as group:
            service = PtyTerminals(
                TerminalsSettings.model_validate(settings),
                root_dir=root,
                reaper=reaper,
                task_group=group,
                server_url="http://127.0.0.1:8888/",
            )
            async with service:
                yield service
            group.cancel_scope.cancel()
    finally:
        process = reaper._process
        reaper.close()
        if process is not None:
            process.wait(10)


async def read_until(
    terminal: PtyTerminal, client: TerminalClient, needle: str, timeout: float = 10
) -> str:
    """Take the client's output, as a connection's writer would, until ``needle`` shows."""
    seen = ""
    with anyio.move_on_after(timeout):
        while needle not in seen:
            frame = await client.next_frame()
            if frame is None:
                break
            terminal.sent(client, len(frame))
            seen += frame
    if needle not in seen:
        raise AssertionError(f"no {needle!r} in the output: {seen[-500:]!r}")
    return seen
