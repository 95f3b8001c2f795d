"""An idle server keeps the modules it only needs later out of its memory.

A real server (the ``junction`` command run in-process by a small script, uvicorn on
loopback, the default profile, SQLite in a temporary data directory) answers ``/api``,
``/api/status`` and ``/api/kernelspecs``; then the script prints its ``sys.modules`` and
stops the server. It runs twice on the same database: the first start creates the tables,
the second finds them current. Modules stay in ``sys.modules`` once imported, so each one
absent here is memory the idle server does not hold.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest

# Loaded on first use, never by an idle server (MB of RSS each, measured on the full profile).
DEFERRED = {
    "alembic": "Alembic runs only when a plugin's tables are behind its revision files",
    "sqlalchemy.dialects.postgresql": "a SQLite server needs only the SQLite dialect (2.4 MB)",
    "asyncpg": "the PostgreSQL driver (3 MB)",
    "jsonschema": "the lab validates settings when a schema is first served (4 MB)",
    "cryptography": "OIDC and hub tokens (6 MB)",
    "IPython": "never needed by the server (2.5 MB)",
    "nbformat": "the notebook export route imports it when it first runs",
    "pycrdt": "collaboration builds documents when the first room opens (1.7 MB)",
    "jupyter_ydoc": "with pycrdt, for the first document room",
    "argon2": "password hashes are made and checked only with the first password (0.5 MB)",
}

SCRIPT = """
import json, os, signal, socket, sys, threading, time

port, token = int(sys.argv[1]), sys.argv[2]
report = {}


def get(path):
    with socket.create_connection(("127.0.0.1", port), timeout=5) as conn:
        conn.sendall(
            f"GET {path} HTTP/1.1\\r\\nHost: 127.0.0.1:{port}\\r\\n"
            f"Authorization: token {token}\\r\\nConnection: close\\r\\n\\r\\n".encode()
        )
        data = b""
        while chunk := conn.recv(65536):
            data += chunk
    return data.split(b" ", 2)[1]


def probe():
    deadline = time.monotonic() + 60
    try:
        while True:
            try:
                if get("/api") == b"200":
                    break
            except OSError:
                pass
            if time.monotonic() > deadline:
                report["error"] = "the server did not answer /api within 60 s"
                return
            time.sleep(0.05)
        report["status"] = [get(path).decode() for path in ("/api/status", "/api/kernelspecs")]
        report["modules"] = sorted(sys.modules)
    finally:
        os.kill(os.getpid(), signal.SIGTERM)


threading.Thread(target=probe, daemon=True).start()
from junction.cli import main

code = main(sys.argv[3:])
print("REPORT " + json.dumps(report))
sys.exit(code)
"""


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def _idle_modules(home: Path) -> set[str]:
    """Start the server on ``home``'s data directory, return its modules once idle."""
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("JUNCTION_", "JUPYTER_", "IPYTHON"))
    }
    env.update(
        JUPYTER_CONFIG_DIR=str(home / "config"),
        JUPYTER_DATA_DIR=str(home / "data"),
        JUPYTER_RUNTIME_DIR=str(home / "runtime"),
        JUPYTER_PLATFORM_DIRS="1",
    )
    port = _free_port()
    argv = [
        *("--no-browser", "--ip", "127.0.0.1", "--port", str(port), "--set", "port_retries=0"),
        *("--token", "idle-imports", "--root-dir", str(home / "root"), "--log-level", "warning"),
    ]
    done = subprocess.run(
        [sys.executable, "-c", SCRIPT, str(port), "idle-imports", *argv],
        capture_output=True,
        text=True,
        env=env,
        timeout=100,
        check=False,
    )
    reports = [line for line in done.stdout.splitlines() if line.startswith("REPORT ")]
    assert done.returncode == 0, done.stderr[-3000:]
    assert reports, done.stdout[-2000:] + done.stderr[-3000:]
    report = json.loads(reports[-1].removeprefix("REPORT "))
    assert "error" not in report, report["error"] + "\n" + done.stderr[-3000:]
    assert report["status"] == ["200", "200"]
    modules: list[str] = report["modules"]
    assert "junction.plugins.kernels" in modules  # the default profile really ran
    return set(modules)


@pytest.fixture(scope="module")
def idle_runs(tmp_path_factory: pytest.TempPathFactory) -> list[set[str]]:
    """The modules of a first start (new database) and a second one (tables current)."""
    home = tmp_path_factory.mktemp("idle")
    (home / "root").mkdir()
    return [_idle_modules(home), _idle_modules(home)]


@pytest.mark.parametrize("start", [0, 1], ids=["new-database", "current-database"])
@pytest.mark.parametrize("module", sorted(DEFERRED))
def test_idle_server_has_not_imported(idle_runs: list[set[str]], start: int, module: str) -> None:
    assert module not in idle_runs[start], f"{module} imported at idle: {DEFERRED[module]}"
