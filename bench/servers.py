"""The servers under test: how each one is started, and a running server's handle.

All of them listen on 127.0.0.1, require the same token, serve the same directory and run
the same kernelspec. Each instance gets fresh Jupyter config, data and runtime directories, so
no user configuration leaks in. jupyter_server's IOPub rate limits are switched off: with them
on it drops the messages the stream scenarios count.
"""

from __future__ import annotations

import atexit
import contextlib
import os
import shutil
import subprocess
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import httpx

from bench.environments import BUILD_DIR, REPO, Environment, version_of
from bench.processes import free_port, kill_tree, spawn

__all__ = [
    "JUNCTION_PROFILE_PLUGINS",
    "JunctionKind",
    "JupyterServerKind",
    "JupyverseKind",
    "RunningServer",
    "ServerKind",
    "ServerStartError",
    "stop_all_servers",
]

JUNCTION_PROFILE_PLUGINS = ("contents", "kernelspecs", "kernels", "sessions", "terminals")
"""The Junction plugins the scenarios use (the UI plugins are left out on purpose)."""


_COLLABORATION_EXTENSIONS = ("jupyter_server_ydoc", "jupyter_server_fileid")
_COLLABORATION_PULLS_IN = ("jupyterlab", "jupyter_lsp", "notebook_shim")


class ServerStartError(RuntimeError):
    """A server exited or never answered ``GET /api`` with 200."""


class ServerKind:
    """One kind of server: its name, version and command line."""

    name: str = ""
    ready_path: str = "api"
    """What cold start waits for: the first 200 on this path (with ``?token=``)."""

    def argv(self, port: int, token: str, root: Path) -> list[str]:
        """The command that serves ``root`` on ``port`` with ``token``."""
        raise NotImplementedError

    def version(self) -> str:
        """The server's version string."""
        raise NotImplementedError

    def describe(self) -> str:
        """A short description of how the server is run, for the report."""
        return " ".join(self.argv(0, "T", Path("D")))


@dataclass
class JupyterServerKind(ServerKind):
    """jupyter_server from its own environment, token auth, rate limits off."""

    env: Environment
    name: str = "jupyter_server"
    collaboration: bool = False
    """Whether jupyter-collaboration (with the file id service it needs) is loaded."""
    server_proxy: bool = False
    """Whether jupyter-server-proxy is loaded (the apps group compares app proxies)."""

    def argv(self, port: int, token: str, root: Path) -> list[str]:
        """``python -m jupyter_server`` with the bench settings."""
        # The environment holds jupyter-collaboration and what it pulls in (JupyterLab, LSP,
        # notebook_shim), each enabled by its own config file; only the collaboration group
        # loads the two it uses, so the other groups measure jupyter_server alone.
        extensions = dict.fromkeys(_COLLABORATION_PULLS_IN, False)
        extensions.update(dict.fromkeys(_COLLABORATION_EXTENSIONS, self.collaboration))
        extensions["jupyter_server_proxy"] = self.server_proxy
        switches = [f"--ServerApp.jpserver_extensions={k}={v}" for k, v in extensions.items()]
        return [
            str(self.env.python),
            "-m",
            "jupyter_server",
            "--no-browser",
            "--allow-root",  # harmless elsewhere; CI and these machines run as root
            "--ServerApp.ip=127.0.0.1",
            f"--ServerApp.port={port}",
            "--ServerApp.port_retries=0",
            f"--IdentityProvider.token={token}",
            f"--ServerApp.root_dir={root}",
            # Rate limits off: with them on, the stream scenarios lose most of their output.
            "--ZMQChannelsWebsocketConnection.limit_rate=False",
            "--ServerApp.log_level=WARN",
            *switches,
        ]

    def version(self) -> str:
        """The installed jupyter_server version."""
        return version_of(self.env.python, "jupyter_server")


@dataclass
class JupyverseKind(ServerKind):
    """jupyverse from its own environment, default token auth; it serves its working dir.

    Its ``lab`` module is disabled: it needs the JupyterLab frontend, which no other server
    here runs either. jupyverse has no ``GET /api``, so readiness is ``GET /api/status``.
    """

    env: Environment
    name: str = "jupyverse"
    ready_path: str = "api/status"

    def argv(self, port: int, token: str, root: Path) -> list[str]:
        """The ``jupyverse`` command with the bench settings."""
        return [
            str(self.env.bin("jupyverse")),
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--set",
            "auth.mode=token",
            "--set",
            f"auth.token={token}",
            "--disable",
            "lab",
        ]

    def version(self) -> str:
        """The installed jupyverse version."""
        return version_of(self.env.python, "jupyverse")


@dataclass
class JunctionKind(ServerKind):
    """Junction from the repository's ``.venv``, with whichever scenario plugins exist."""

    name: str = "junction"
    profile: str | None = None
    """A named profile to run instead of the scenario plugins (``--junction-profile``)."""
    plugins: list[str] = field(default_factory=lambda: list(JUNCTION_PROFILE_PLUGINS))
    settings: list[str] = field(default_factory=list)
    """Extra ``--set key=value`` settings (the prespawned-kernel server sets its pool)."""
    log_level: str = "warning"
    missing: dict[str, str] = field(default_factory=dict)
    discovered: bool = False

    @property
    def executable(self) -> Path:
        """The ``junction`` console script."""
        return REPO / ".venv" / "bin" / "junction"

    def _composes(self, names: list[str]) -> tuple[bool, str]:
        argv = [str(self.executable), "plugins", "--profile", "none"]
        for name in names:
            argv += ["--enable", name]
        result = subprocess.run(argv, capture_output=True, text=True, check=False)
        return result.returncode == 0, (result.stderr or result.stdout).strip()

    def discover_plugins(self) -> None:
        """Find which of the scenario plugins load and compose; remember why others do not.

        Called only when Junction fails to start with all of them (``junction plugins`` takes
        a couple of seconds, which a quick run cannot spare)."""
        self.plugins, self.missing, self.discovered = [], {}, True
        ok, _ = self._composes(list(JUNCTION_PROFILE_PLUGINS))
        if ok:
            self.plugins = list(JUNCTION_PROFILE_PLUGINS)
            return
        for name in JUNCTION_PROFILE_PLUGINS:
            ok, message = self._composes([*self.plugins, name])
            if ok:
                self.plugins.append(name)
            else:
                self.missing[name] = message.splitlines()[-1] if message else "does not load"

    def argv(self, port: int, token: str, root: Path) -> list[str]:
        """The ``junction`` command with the bench settings and the plugins that exist."""
        argv = [
            str(self.executable),
            "--no-browser",
            "--ip",
            "127.0.0.1",
            "--port",
            str(port),
            "--token",
            token,
            "--root-dir",
            str(root),
            "--log-level",
            self.log_level,
            "--profile",
            self.profile or "none",
        ]
        for setting in self.settings:
            argv += ["--set", setting]
        if self.profile:
            return argv
        for name in self.plugins:
            argv += ["--enable", name]
        return argv

    def version(self) -> str:
        """Junction's version (from the repository's environment)."""
        return version_of(REPO / ".venv" / "bin" / "python", "jupyter-junction")


_LIVE: set[RunningServer] = set()


@atexit.register
def stop_all_servers() -> None:
    """Stop every server still running, in parallel (also the last line of defence at exit)."""
    servers = list(_LIVE)
    if servers:
        with ThreadPoolExecutor(max_workers=len(servers)) as pool:
            list(pool.map(lambda server: server.stop(), servers))


def _server_env(jupyter_path: Path, home: Path) -> dict[str, str]:
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("JUNCTION_", "JUPYTER", "IPYTHON", "VIRTUAL_ENV", "PYTHON"))
    }
    env.update(
        JUPYTER_PATH=str(jupyter_path),
        JUPYTER_CONFIG_DIR=str(home / "config"),
        JUPYTER_DATA_DIR=str(home / "data"),
        JUPYTER_RUNTIME_DIR=str(home / "runtime"),
        IPYTHONDIR=str(home / "ipython"),
        JUPYTER_PLATFORM_DIRS="1",
        PYTHONUNBUFFERED="1",
    )
    return env


@dataclass(eq=False)
class RunningServer:
    """A server process the harness started; :meth:`stop` kills it and its kernels."""

    kind: ServerKind
    process: subprocess.Popen[bytes]
    port: int
    token: str
    home: Path
    log: Path
    started_at: float

    @property
    def url(self) -> str:
        """The server's base URL."""
        return f"http://127.0.0.1:{self.port}/"

    @property
    def pid(self) -> int:
        """The server's process id (the process measured for RSS and CPU)."""
        return self.process.pid

    @classmethod
    def launch(
        cls, kind: ServerKind, *, token: str, root: Path, jupyter_path: Path
    ) -> RunningServer:
        """Start ``kind`` on a free port with fresh Jupyter directories."""
        BUILD_DIR.mkdir(parents=True, exist_ok=True)
        home = Path(tempfile.mkdtemp(prefix=f"{kind.name}-", dir=BUILD_DIR))
        for sub in ("config", "data", "runtime", "ipython"):
            (home / sub).mkdir()
        port = free_port()
        log = home / "server.log"
        cwd = root if isinstance(kind, JupyverseKind) else home
        started = time.perf_counter()
        process = spawn(
            kind.argv(port, token, root),
            env=_server_env(jupyter_path, home),
            cwd=cwd,
            log=log,
        )
        server = cls(kind, process, port, token, home, log, started)
        _LIVE.add(server)
        return server

    @classmethod
    def launch_ready(
        cls, kind: ServerKind, *, token: str, root: Path, jupyter_path: Path
    ) -> tuple[RunningServer, float]:
        """Launch and wait until ready; returns the server and its start time in seconds.

        If Junction does not start with every scenario plugin (some not built yet), find the
        ones that load and try once more with those.
        """
        server = cls.launch(kind, token=token, root=root, jupyter_path=jupyter_path)
        try:
            return server, server.wait_ready()
        except ServerStartError:
            server.stop()
            if not isinstance(kind, JunctionKind) or kind.discovered or kind.profile:
                raise
        kind.discover_plugins()
        server = cls.launch(kind, token=token, root=root, jupyter_path=jupyter_path)
        try:
            return server, server.wait_ready()
        except ServerStartError:
            server.stop()
            raise

    def wait_ready(self, timeout: float = 60.0) -> float:
        """Poll ``GET /api`` (or the kind's ``ready_path``) until it answers 200; return
        seconds since launch."""
        deadline = time.perf_counter() + timeout
        headers = {"Authorization": f"token {self.token}"}
        with httpx.Client(timeout=2.0, headers=headers) as client:
            while time.perf_counter() < deadline:
                if self.process.poll() is not None:
                    raise ServerStartError(
                        f"{self.kind.name} exited with {self.process.returncode}:\n"
                        + self.log_tail()
                    )
                try:
                    response = client.get(
                        f"{self.url}{self.kind.ready_path}", params={"token": self.token}
                    )
                except httpx.TransportError:
                    response = None
                if response is not None and response.status_code == 200:
                    return time.perf_counter() - self.started_at
                time.sleep(0.005)
        raise ServerStartError(f"{self.kind.name} not ready after {timeout}s:\n{self.log_tail()}")

    def log_tail(self, lines: int = 25) -> str:
        """The last lines the server printed."""
        try:
            text = self.log.read_text(errors="replace")
        except OSError:
            return ""
        return "\n".join(text.splitlines()[-lines:])

    def stop(self, *, keep_home: bool = False) -> None:
        """Kill the server and its kernels, then remove its temporary directory."""
        kill_tree(self.process)
        _LIVE.discard(self)
        logs = BUILD_DIR / "logs"
        logs.mkdir(exist_ok=True)
        with contextlib.suppress(OSError):
            shutil.copyfile(self.log, logs / f"{self.home.name}.log")
        if not keep_home:
            shutil.rmtree(self.home, ignore_errors=True)
