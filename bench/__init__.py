"""Junction's benchmark suite: Junction against jupyter_server and jupyverse, plus the floor.

Run it as ``python -m bench`` (full, a few minutes) or ``python -m bench --quick`` from the
repository root. Map of the package:

- ``cli``: the command line and the run from start to finish (servers up, scenarios, report).
- ``plan``: how big each scenario is in full and quick mode.
- ``environments``: the comparison servers' virtual environments and the shared kernelspec.
- ``processes``: launching processes in their own groups, /proc readings, killing process trees.
- ``servers``: how each server is started, and a running server's handle.
- ``rest``: a Jupyter REST client (login, kernels, sessions, contents).
- ``messages``: Jupyter messages and the two WebSocket wire formats (JSON and v1 binary).
- ``channels``: kernel connections: over a server's WebSocket, or straight over ZeroMQ (floor).
- ``load``: a keep-alive HTTP load generator, run in its own process.
- ``fixtures``: the directory tree every server serves.
- ``scenarios/``: one module per group of measurements.
- ``results``, ``report``: raw samples, their summaries, the Markdown table and the JSON file.

The harness is a client of the public API only (REST and the kernel WebSocket), so it measures
any Jupyter server given a URL and a token.
"""
