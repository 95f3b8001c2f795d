"""``python -m bench.profile SCENARIO``: a flame graph of Junction serving one REST request.

Starts Junction as the benchmark does (scenario plugins, a fixture tree), loads one endpoint
with :mod:`bench.load` (50 keep-alive connections) while ``py-spy record`` samples the
server, and writes ``build/profile/<scenario>.svg``. ``make profile SCENARIO=status``.
"""

from __future__ import annotations

import argparse
import secrets
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

from bench.environments import BUILD_DIR, REPO, kernelspec_path
from bench.servers import JunctionKind, RunningServer

__all__ = ["SCENARIOS", "main"]

SCENARIOS = {
    "status": "api/status",
    "contents": "api/contents/small.txt?content=1",
    "listing": "api/contents/folder",
    "kernels": "api/kernels",
}
"""Scenario name -> the request loaded while the profiler samples."""

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
    parser.add_argument("scenario", choices=sorted(SCENARIOS))
    parser.add_argument("--seconds", type=float, default=10.0, help="how long to sample")
    parser.add_argument("--rate", type=int, default=250, help="samples per second")
    args = parser.parse_args(argv)
    py_spy = shutil.which("py-spy", path=str(REPO / ".venv" / "bin")) or shutil.which("py-spy")
    if py_spy is None:
        print("py-spy is missing: install the dev extra", file=sys.stderr)
        return 1
    PROFILE_DIR.mkdir(parents=True, exist_ok=True)
    output = PROFILE_DIR / f"{args.scenario}.svg"
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
    print(f"flame graph: {output.relative_to(REPO)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
