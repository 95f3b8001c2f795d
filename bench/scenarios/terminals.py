"""Terminals: keystroke-to-echo latency and output throughput through the terminal WebSocket.

Both servers speak terminado's protocol (``/terminals/websocket/{name}``, JSON arrays), so
one client measures them alike. Latency: ``cat`` runs in the terminal and each of
``terminal_keystrokes`` single characters is sent as ``["stdin", c]`` and timed until its echo
(from the PTY's line discipline) comes back. Throughput: ``yes | head -c <N>M`` runs, timed
from the command to the marker printed after it; the rate counts the N MB ``yes`` wrote (the
PTY turns each ``\\n`` into ``\\r\\n``, so a third more travels). Server CPU is measured per
keystroke and per output MB, as in the kernel scenarios.
"""

from __future__ import annotations

import asyncio
import functools
import json
import string
import time

import websockets

from bench.processes import cpu_seconds
from bench.rest import Unavailable
from bench.scenarios.common import Context
from bench.targets import ServerTarget

__all__ = ["TERMINAL_PLUGINS", "terminal_suite"]

TERMINAL_PLUGINS = ("terminals",)
_WARMUP = 10
_READY_TRIES = 10
_READY_WAIT = 3.0
_MARKER = "END-$((6*7))"
_MARKER_OUT = "END-42"


class _Terminal:
    """One terminal WebSocket: send keystrokes, read until some output shows."""

    def __init__(self, connection: websockets.ClientConnection) -> None:
        self.connection = connection
        self.received = 0

    async def send(self, text: str) -> None:
        await self.connection.send(json.dumps(["stdin", text]))

    async def read_until(self, needle: str) -> None:
        """Read stdout frames until ``needle`` shows (it may span frames)."""
        tail = ""
        while True:
            message = json.loads(await self.connection.recv())
            if message[0] == "disconnect":
                raise RuntimeError("the terminal ended")
            if message[0] != "stdout":
                continue
            self.received += len(message[1])
            window = tail + message[1]
            if needle in window:
                return
            tail = window[-64:]


async def _open(target: ServerTarget) -> tuple[str, _Terminal]:
    http = target.client.http
    response = await http.post("api/terminals", json={})
    if response.status_code == 404:
        raise Unavailable("POST /api/terminals: 404")
    response.raise_for_status()
    name = str(response.json()["name"])
    url = target.client.url.replace("http", "ws", 1) + f"terminals/websocket/{name}"
    connection = await websockets.connect(
        url, additional_headers=target.client.auth_headers(), max_size=None
    )
    terminal = _Terminal(connection)
    while json.loads(await connection.recv())[0] != "setup":
        pass
    # A shell still starting may drop what is typed ahead (readline flushes it): ask again.
    for _ in range(_READY_TRIES):
        await terminal.send("echo READY-$((2*3))\r")
        try:
            async with asyncio.timeout(_READY_WAIT):
                await terminal.read_until("READY-6")
        except TimeoutError:
            continue
        return name, terminal
    raise RuntimeError("the terminal's shell never answered")


async def _close(target: ServerTarget, name: str, terminal: _Terminal) -> None:
    await terminal.connection.close()
    await target.client.http.delete(f"api/terminals/{name}")


async def _echo_turn(ctx: Context, target: ServerTarget) -> None:
    name, terminal = await _open(target)
    try:
        await terminal.send("stty -icanon; cat\r")  # cat reads each key as it comes
        await terminal.send(":")
        await terminal.read_until(":")
        letters = string.ascii_lowercase
        for i in range(_WARMUP):
            await terminal.send(letters[i % 26])
            await terminal.read_until(letters[i % 26])
        pid = target.pid
        cpu_before = cpu_seconds(pid) if pid else 0.0
        count = ctx.plan.terminal_keystrokes
        for i in range(count):
            key = letters[i % 26]
            started = time.perf_counter()
            await terminal.send(key)
            await terminal.read_until(key)
            ctx.results.add("term_echo", target.name, time.perf_counter() - started)
        if pid:
            cpu = cpu_seconds(pid) - cpu_before
            ctx.results.add("term_cpu_key", target.name, cpu / count)
        await terminal.send("\x03")
    finally:
        await _close(target, name, terminal)


async def _output_turn(ctx: Context, target: ServerTarget) -> None:
    megabytes = ctx.plan.terminal_output_mb
    name, terminal = await _open(target)
    try:
        pid = target.pid
        cpu_before = cpu_seconds(pid) if pid else 0.0
        started = time.perf_counter()
        await terminal.send(f"yes | head -c {megabytes}M; echo {_MARKER}\r")
        await terminal.read_until(_MARKER_OUT)
        seconds = time.perf_counter() - started
        cpu_after = cpu_seconds(pid) if pid else 0.0
        if terminal.received < megabytes << 20:
            raise RuntimeError(f"received {terminal.received} of {megabytes << 20} characters")
        ctx.results.add("term_output", target.name, megabytes / seconds)
        if pid:
            ctx.results.add("term_cpu_mb", target.name, (cpu_after - cpu_before) / megabytes)
    finally:
        await _close(target, name, terminal)


async def terminal_suite(ctx: Context) -> None:
    """Keystroke echo, then output throughput, servers interleaved."""
    for _ in range(ctx.plan.terminal_rounds):
        for target in ctx.servers:
            await ctx.attempt(
                "terminal_echo",
                target.name,
                ["term_echo", "term_cpu_key"],
                functools.partial(_echo_turn, ctx, target),
                needs=TERMINAL_PLUGINS,
            )
        for target in ctx.servers:
            await ctx.attempt(
                "terminal_output",
                target.name,
                ["term_output", "term_cpu_mb"],
                functools.partial(_output_turn, ctx, target),
                needs=TERMINAL_PLUGINS,
            )
