"""What every scenario shares: the run's context, guarded attempts, and kernel helpers.

Scenarios interleave their targets: each round runs a share of the work on every target in
turn (A B C A B C ...), so drifts of the machine spread over all of them alike.
"""

from __future__ import annotations

import asyncio
import time
import traceback
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TypeVar

import httpx
from websockets.exceptions import InvalidStatus

from bench.channels import Channel
from bench.fixtures import Fixtures
from bench.messages import execute_content
from bench.plan import Plan
from bench.rest import Unavailable
from bench.results import Results
from bench.servers import JunctionKind
from bench.targets import FloorTarget, KernelTarget, ServerTarget

__all__ = ["Context", "ExecuteOutcome", "execute", "finish", "wait_reply"]

T = TypeVar("T")

QUIET = 5.0
"""Seconds without a message that end an execution whose IOPub ``idle`` was lost."""

KERNEL_PLUGINS = ("kernelspecs", "kernels")
CONTENTS_PLUGINS = ("contents",)


@dataclass
class Context:
    """The run: its plan, results, targets and fixtures."""

    plan: Plan
    results: Results
    servers: list[ServerTarget]
    floor: FloorTarget
    fixtures: Fixtures
    log: Path
    jupyter_path: Path
    dead: set[tuple[str, str]] = field(default_factory=set)

    def kernel_targets(self) -> list[KernelTarget]:
        """The floor first, then every server."""
        return [self.floor, *self.servers]

    def is_junction(self, target: str) -> bool:
        """Whether ``target`` is Junction (whose unbuilt features become "n/a" notes)."""
        return any(
            s.name == target and isinstance(s.server.kind, JunctionKind) for s in self.servers
        )

    def _missing_plugins(self, target: str, needs: Sequence[str]) -> list[str]:
        for server in self.servers:
            if server.name == target and isinstance(server.server.kind, JunctionKind):
                return [n for n in needs if n not in server.server.kind.plugins]
        return []

    async def attempt(
        self,
        scenario: str,
        target: str,
        series: Sequence[str],
        run: Callable[[], Awaitable[T]],
        *,
        needs: Sequence[str] = (),
        timeout: float | None = None,
    ) -> T | None:
        """Run one turn of ``scenario`` on ``target``, turning failures into table notes.

        Outcomes other than success, each shown in the table instead of a number:

        - "n/a": the server lacks the route (404), or a Junction plugin is not built yet;
        - "fails": the server answered 5xx or took longer than the scenario's time limit; a
          finding about the server, listed after the table, not a failure of the run;
        - "ERROR": anything else, most likely the harness itself; the run exits non-zero.

        A target that did not succeed is not tried again in later rounds of the scenario.
        """
        if (scenario, target) in self.dead:
            return None
        missing = self._missing_plugins(target, needs)
        if missing:
            self.dead.add((scenario, target))
            for name in series:
                self.results.note(name, target, f"n/a: {', '.join(missing)} plugin not built yet")
            return None
        limit = timeout or self.plan.scenario_timeout
        try:
            async with asyncio.timeout(limit):
                return await run()
        except Exception as exc:
            self.dead.add((scenario, target))
            with self.log.open("a") as out:
                out.write(f"--- {scenario} / {target}\n{traceback.format_exc()}\n")
            status = _http_status(exc)
            if isinstance(exc, Unavailable) or status == 404:
                for name in series:
                    self.results.note(name, target, f"n/a: {_short(exc)}")
            elif (status is not None and status >= 500) or isinstance(exc, TimeoutError):
                text = f"fails: HTTP {status}" if status else f"fails: > {limit:.0f} s"
                self.results.failures.append(f"{scenario} / {target}: {text} ({_short(exc)})")
                for name in series:
                    self.results.note(name, target, text)
            else:
                for name in series:
                    self.results.error(name, target, f"{type(exc).__name__}: {_short(exc)}")
        return None


def _http_status(exc: BaseException) -> int | None:
    if isinstance(exc, InvalidStatus):
        return int(exc.response.status_code)
    if isinstance(exc, httpx.HTTPStatusError):
        return exc.response.status_code
    return None


def _short(exc: BaseException) -> str:
    return str(exc).splitlines()[0] if str(exc) else type(exc).__name__


@dataclass
class ExecuteOutcome:
    """What one execution produced, as seen by one client."""

    seconds: float
    streams: int
    stream_bytes: int
    stream_lines: int
    idle_seen: bool


async def wait_reply(channel: Channel, msg_id: str, reply_type: str) -> None:
    """Read until the shell reply to ``msg_id`` arrives."""
    while True:
        msg = await channel.recv()
        if msg.parent_id == msg_id and msg.msg_type == reply_type:
            return


async def finish(
    channel: Channel, msg_id: str, started: float, *, reply: bool = True
) -> ExecuteOutcome:
    """Read until ``msg_id`` has its IOPub ``idle`` (and its ``execute_reply`` when ``reply``:
    only the sending client gets the reply); count the stream messages on the way.

    A server that falls behind the kernel loses IOPub messages (ZeroMQ drops them at the
    high-water mark), the ``idle`` among them. So once the reply is in (or from the start, for
    a client that gets no reply), ``QUIET`` seconds without a message for ``msg_id`` also end
    the wait. The time returned is that of the last message for ``msg_id``.
    """
    replied, idle = not reply, False
    streams = stream_bytes = lines = 0
    last = started
    while not (replied and idle):
        try:
            async with asyncio.timeout(QUIET if replied else None):
                msg = await channel.recv()
        except TimeoutError:
            if time.perf_counter() - last >= QUIET:
                break
            continue
        if msg.parent_id != msg_id:
            continue
        last = time.perf_counter()
        if msg.msg_type == "stream":
            streams += 1
            stream_bytes += msg.size
            lines += msg.newlines()
        elif msg.msg_type == "execute_reply":
            replied = True
        elif msg.msg_type == "status" and msg.content().get("execution_state") == "idle":
            idle = True
    return ExecuteOutcome(last - started, streams, stream_bytes, lines, idle)


async def execute(channel: Channel, code: str) -> ExecuteOutcome:
    """Run ``code`` like a notebook cell; time it until the reply and IOPub idle are both in."""
    started = time.perf_counter()
    msg_id = await channel.send("shell", "execute_request", execute_content(code))
    return await finish(channel, msg_id, started)
