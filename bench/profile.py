"""``python -m bench.profile SCENARIO``: a flame graph of Junction under one kind of load.

Starts Junction as the benchmark does (scenario plugins, a fixture tree) and loads it while
``py-spy record`` samples the server, then writes ``build/profile/<scenario>.svg``
(``--format raw`` writes collapsed stacks, ``.txt``, for reading without a browser).
REST scenarios load one endpoint with :mod:`bench.load` (50 keep-alive connections); kernel
scenarios run a print loop on one kernel over the v1 WebSocket (``stream``: 5,000 flushed
prints per cell, one client; ``fanout``: the same to 20 clients), cell after cell.
``make profile SCENARIO=stream``.
"""

from __future__ import annotations

import argparse
import asyncio
import secrets
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

from bench.channels import WebSocketChannel, handshake
from bench.environments import BUILD_DIR, KERNEL_NAME, REPO, kernelspec_path
from bench.messages import execute_content
from bench.rest import JupyterClient
from bench.scenarios.common import finish
from bench.servers import JunctionKind, RunningServer

__all__ = ["SCENARIOS", "main"]

SCENARIOS = {
    "status": "api/status",
    "contents": "api/contents/small.txt?content=1",
    "listing": "api/contents/folder",
    "kernels": "api/kernels",
}
"""Scenario name -> the request loaded while the profiler samples."""

KERNEL_SCENARIOS = {"stream": 1, "fanout": 20}
"""Kernel scenario name -> how many v1 WebSocket clients receive the print loop."""

PROFILE_DIR = REPO / "build" / "profile"


def _fixture_tree(root: Path) -> None:
    (root / "small.txt").write_bytes(b"a line of text for the profile fixture\n" * 25)
    folder = root / "folder"
    folder.mkdir()
    for index in range(20):
        (folder / f"file-{index}.txt").write_text("x")


def main(argv: list[str] | None = None) -> int:
    """Profile one scenario; returns the exit status."""
    parser = argparse.ArgumentParser(prog="python -m bench.profile", description=__doc__)
    parser.add_argument("scenario", choices=sorted([*SCENARIOS, *KERNEL_SCENARIOS]))
    parser.add_argument("--seconds", type=float, default=10.0, help="how long to sample")
    parser.add_argument("--rate", type=int, default=250, help="samples per second")
    parser.add_argument("--format", choices=["flamegraph", "raw"], default="flamegraph")
    parser.add_argument(
        "--native", action="store_true", help="include C frames (event loop, ZeroMQ, sockets)"
    )
    args = parser.parse_args(argv)
    py_spy = shutil.which("py-spy", path=str(REPO / ".venv" / "bin")) or shutil.which("py-spy")
    if py_spy is None:
        print("py-spy is missing: install the dev extra", file=sys.stderr)
        return 1
    PROFILE_DIR.mkdir(parents=True, exist_ok=True)
    suffix = ".svg" if args.format == "flamegraph" else ".txt"
    output = PROFILE_DIR / f"{args.scenario}{suffix}"
    root = Path(tempfile.mkdtemp(prefix="profile-", dir=BUILD_DIR))
    _fixture_tree(root)
    token = secrets.token_hex(16)
    jupyter_path = kernelspec_path(REPO / ".venv" / "bin" / "python")
    server, _ = RunningServer.launch_ready(
        JunctionKind(), token=token, root=root, jupyter_path=jupyter_path
    )
    try:
        record = [py_spy, "record", "--pid", str(server.pid), "--rate", str(args.rate)]
        record += ["--duration", str(int(args.seconds)), "--output", str(output), "--nonblocking"]
        record += ["--format", args.format]
        if args.native:  # native frames need the process stopped at each sample
            record = [part for part in record if part != "--nonblocking"] + ["--native"]
        if args.scenario in KERNEL_SCENARIOS:
            clients = KERNEL_SCENARIOS[args.scenario]
            summary = asyncio.run(_kernel_load(server, token, clients, record, args.seconds))
            print(summary)
            print(f"profile: {output.relative_to(REPO)}")
            return 0
        recorder = subprocess.Popen(record)
        load_argv = [sys.executable, "-m", "bench.load", "--url", server.url, "--connections", "50"]
        load_argv += ["--path", "/" + SCENARIOS[args.scenario], "--seconds", str(args.seconds)]
        load_argv += ["--warmup", "0.5", "--header", f"Authorization: token {token}"]
        load = subprocess.run(
            load_argv,
            cwd=REPO,
            capture_output=True,
            text=True,
            check=False,
        )
        recorder.wait(timeout=args.seconds + 60)
    finally:
        server.stop()
        shutil.rmtree(root, ignore_errors=True)
    print(load.stdout.strip())
    if load.returncode != 0 or recorder.returncode != 0:
        print(load.stderr[-2000:], file=sys.stderr)
        return 1
    print(f"profile: {output.relative_to(REPO)}")
    return 0


async def _kernel_load(
    server: RunningServer, token: str, clients: int, record: list[str], seconds: float
) -> str:
    """Run print loops on one kernel while ``record`` samples; a line of totals."""
    async with JupyterClient(server.url, token) as client:
        kernel = await client.start_kernel(KERNEL_NAME)
        channels = [
            await WebSocketChannel.open(
                server.url,
                kernel.id,
                headers=client.auth_headers(),
                token=token,
                protocol="v1",
                compression=False,
            )
            for _ in range(clients)
        ]
        try:
            for channel in channels:
                await handshake(channel)
            code = "for i in range(5000):\n    print(i, flush=True)"
            recorder = await asyncio.create_subprocess_exec(*record)
            loop = asyncio.get_running_loop()
            deadline = loop.time() + seconds
            cells = messages = 0
            while loop.time() < deadline:
                started = loop.time()
                msg_id = await channels[0].send("shell", "execute_request", execute_content(code))
                outcomes = await asyncio.gather(
                    *(
                        finish(channel, msg_id, started, reply=index == 0)
                        for index, channel in enumerate(channels)
                    )
                )
                cells += 1
                messages += sum(outcome.streams for outcome in outcomes)
            await asyncio.wait_for(recorder.wait(), timeout=60)
        finally:
            for channel in channels:
                await channel.close()
            await client.stop_kernel(kernel)
    return f"{cells} cells, {messages} stream messages delivered to {clients} client(s)"


if __name__ == "__main__":
    raise SystemExit(main())
