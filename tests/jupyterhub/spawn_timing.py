"""Spawn-to-ready time of ``junction-singleuser`` next to ``jupyterhub-singleuser``, under one
real Hub on this machine (a measurement, not a test; timings never go into tests).

ana's server runs Junction, bob's runs jupyter_server (a ``pre_spawn_hook`` picks the command
by user); they are started alternately ``--rounds`` times each with :meth:`Hub.start_server`
(POST ``users/<name>/server``, then poll every 50 ms until the Hub reports the server ready,
which includes the Hub's own readiness poll), and stopped in between.

    python tests/jupyterhub/spawn_timing.py --rounds 4
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
from pathlib import Path

from hubrun import running_hub

BIN = Path(sys.executable).parent


def main() -> None:
    """Run the measurement and print one line per server kind."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=4)
    rounds = parser.parse_args().rounds
    commands = {
        "ana": [str(BIN / "junction-singleuser")],
        "bob": [str(BIN / "jupyterhub-singleuser"), "--allow-root"],
    }
    extra = f"""
COMMANDS = {commands!r}
def _pick_command(spawner):
    spawner.cmd = COMMANDS[spawner.user.name]
c.Spawner.pre_spawn_hook = _pick_command
"""
    times: dict[str, list[float]] = {name: [] for name in commands}
    with tempfile.TemporaryDirectory() as tmp, running_hub(Path(tmp), extra=extra) as hub:
        for _ in range(rounds):
            for name in commands:
                times[name].append(hub.start_server(name, timeout=120))
                hub.stop_server(name)
    load = os.getloadavg()[0]
    for name, command in commands.items():
        spawns = ", ".join(f"{t:.2f}" for t in times[name])
        median = statistics.median(times[name])
        print(f"{Path(command[0]).name}: {spawns}  median {median:.2f} s  (load {load:.1f})")


if __name__ == "__main__":
    main()
