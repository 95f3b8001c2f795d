"""A real JupyterHub for tests: loopback ports, its own sqlite db and secrets in a temp dir,
configurable-http-proxy from this folder's node_modules, DummyAuthenticator with a password,
SimpleLocalProcessSpawner running ``junction-singleuser`` (or another command).

Used by tests/e2e/test_jupyterhub.py, tests/browser/test_jupyterhub_flow.py and
tests/jupyterhub/test_hub_service.py (with ``extra`` configuration: a service, groups,
roles).
"""

from __future__ import annotations

import json
import os
import secrets
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import httpx

from junction.testing import free_port

HERE = Path(__file__).parent
PROXY = HERE / "node_modules" / ".bin" / "configurable-http-proxy"
PASSWORD = "hub-test-password"
USERS = ("ana", "bob", "cy", "dan", "eve")
T = TypeVar("T")


def wait_for(
    condition: Callable[[], T | None], *, timeout: float, what: str, every: float = 0.1
) -> T:
    """Poll ``condition`` until it returns something truthy; fail after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}")
        time.sleep(every)


@dataclass
class Hub:
    """A running Hub: its public URL, an admin client for its REST API, its temp dir."""

    url: str
    api: httpx.Client
    tmp: Path
    process: subprocess.Popen[bytes]
    api_url: str
    """The Hub's own REST API, without the proxy (``JUPYTERHUB_API_URL`` of its services)."""

    def user(self, name: str) -> dict[str, Any]:
        """The Hub's model of a user."""
        response = self.api.get(f"users/{name}")
        response.raise_for_status()
        model: dict[str, Any] = response.json()
        return model

    def token_for(self, name: str, **body: Any) -> str:
        """A new Hub API token of ``name`` (all of the user's own scopes by default)."""
        response = self.api.post(f"users/{name}/tokens", json={"note": "test", **body})
        response.raise_for_status()
        token: str = response.json()["token"]
        return token

    def start_server(self, name: str, *, timeout: float = 90) -> float:
        """Start ``name``'s server and wait until the Hub says it is ready; returns seconds."""
        started = time.monotonic()
        response = self.api.post(f"users/{name}/server")
        assert response.status_code in (201, 202), response.text
        wait_for(
            lambda: self.user(name)["servers"].get("", {}).get("ready"),
            timeout=timeout,
            what=f"{name}'s server to be ready ({self.log_tail()})",
            every=0.05,
        )
        return time.monotonic() - started

    def stop_server(self, name: str, *, timeout: float = 60) -> None:
        """Stop ``name``'s server and wait until the Hub says it is gone."""
        response = self.api.delete(f"users/{name}/server")
        assert response.status_code in (202, 204), response.text
        wait_for(
            lambda: "" not in self.user(name)["servers"],
            timeout=timeout,
            what=f"{name}'s server to stop",
        )

    def stop(self) -> None:
        """Stop the Hub (SIGTERM, SIGKILL after 30 s): its proxy, spawned servers and managed
        services stop with it. Called again when the ``running_hub`` block ends."""
        self.api.close()
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait()

    def log_tail(self, lines: int = 40) -> str:
        """The end of the Hub's log (the single-user servers log there too)."""
        path = self.tmp / "hub.log"
        text = path.read_text(errors="replace") if path.exists() else ""
        return "\n".join(text.splitlines()[-lines:])


def _config(tmp: Path, *, port: int, hub_port: int, cmd: Sequence[str], admin_token: str) -> str:
    spawner_env = {
        "JUPYTER_RUNTIME_DIR": str(tmp / "runtime"),
        "JUPYTER_DATA_DIR": str(tmp / "data"),
        "JUPYTER_CONFIG_DIR": str(tmp / "config"),
        "JUPYTERHUB_ACTIVITY_INTERVAL": "1",
        "JUNCTION_LOG_LEVEL": "info",
    }
    return f"""
import sys
c = get_config()  # noqa: F821
c.JupyterHub.ip = "127.0.0.1"
c.JupyterHub.port = {port}
c.JupyterHub.hub_ip = "127.0.0.1"
c.JupyterHub.hub_port = {hub_port}
c.ConfigurableHTTPProxy.command = [{str(PROXY)!r}]
c.ConfigurableHTTPProxy.api_url = "http://127.0.0.1:{free_port()}"
c.ConfigurableHTTPProxy.auth_token = {secrets.token_hex(16)!r}
c.ConfigurableHTTPProxy.should_start = True
c.JupyterHub.db_url = "sqlite:///{tmp}/jupyterhub.sqlite"
c.JupyterHub.cookie_secret_file = "{tmp}/jupyterhub_cookie_secret"
c.JupyterHub.pid_file = "{tmp}/jupyterhub.pid"
c.JupyterHub.authenticator_class = "dummy"
c.DummyAuthenticator.password = {PASSWORD!r}
c.Authenticator.allowed_users = {set(USERS)!r}
c.JupyterHub.spawner_class = "simple"
c.SimpleLocalProcessSpawner.home_dir_template = "{tmp}/home/{{username}}"
c.Spawner.cmd = {list(cmd)!r}
c.Spawner.environment = {spawner_env!r}
c.Spawner.http_timeout = 90
c.Spawner.start_timeout = 90
c.JupyterHub.cleanup_servers = True
c.JupyterHub.services = [{{"name": "test-admin", "api_token": {admin_token!r}}}]
c.JupyterHub.load_roles = [{{
    "name": "test-admin",
    "scopes": ["admin:users", "admin:servers", "tokens", "list:users", "read:users"],
    "services": ["test-admin"],
}}]
"""


@contextmanager
def running_hub(
    tmp: Path, *, cmd: Sequence[str] | None = None, extra: str = "", hub_port: int | None = None
) -> Iterator[Hub]:
    """Run a Hub until the block ends; single-user servers are stopped with it.

    ``extra`` is appended to the generated ``jupyterhub_config.py`` (it may extend
    ``c.JupyterHub.services`` and ``c.JupyterHub.load_roles``); ``hub_port`` is the port of
    the Hub's own API (default: a free one), for services started before the Hub.
    """
    if not PROXY.exists():
        raise AssertionError(
            f"{PROXY} is missing: run 'npm ci' in {HERE} (make does it through NODE_STAMPS)"
        )
    for sub in ("runtime", "data", "config", *(f"home/{name}" for name in USERS)):
        (tmp / sub).mkdir(parents=True, exist_ok=True)
    port = free_port()
    hub_port = hub_port or free_port()
    admin_token = secrets.token_hex(24)
    singleuser = Path(sys.executable).parent / "junction-singleuser"
    config = tmp / "jupyterhub_config.py"
    generated = _config(
        tmp, port=port, hub_port=hub_port, cmd=cmd or [str(singleuser)], admin_token=admin_token
    )
    config.write_text(generated + extra)
    log = (tmp / "hub.log").open("wb")
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}:{os.environ.get('PATH', '')}"}
    process = subprocess.Popen(
        [sys.executable, "-m", "jupyterhub", "-f", str(config)],
        cwd=tmp,
        stdout=log,
        stderr=subprocess.STDOUT,
        env=env,
        start_new_session=True,
    )
    url = f"http://127.0.0.1:{port}"
    api = httpx.Client(
        base_url=f"{url}/hub/api/",
        headers={"Authorization": f"token {admin_token}"},
        timeout=30,
    )
    hub = Hub(
        url=url, api=api, tmp=tmp, process=process, api_url=f"http://127.0.0.1:{hub_port}/hub/api"
    )
    try:

        def up() -> bool:
            if process.poll() is not None:
                raise AssertionError(f"the Hub exited:\n{hub.log_tail()}")
            try:
                return api.get("").status_code == 200
            except httpx.HTTPError:
                return False

        wait_for(up, timeout=60, what="the Hub to answer")
        yield hub
    finally:
        hub.stop()
        log.close()


def hub_json(response: httpx.Response) -> Any:
    """A response's JSON, with the body in the failure message when it is not."""
    try:
        return response.json()
    except json.JSONDecodeError as exc:
        raise AssertionError(f"not JSON ({response.status_code}): {response.text[:300]}") from exc


def hub_login(hub: Hub, name: str, *, next_url: str) -> tuple[httpx.Client, httpx.Response]:
    """A cookie-keeping client logged into the Hub as ``name``, having followed every
    redirect from the Hub's login to ``next_url``, and the last response."""
    client = httpx.Client(base_url=hub.url, timeout=30, follow_redirects=True)
    form = client.get("/hub/login")
    assert form.status_code == 200, form.text[:300]
    xsrf = client.cookies.get("_xsrf", path="/hub/")
    response = client.post(
        "/hub/login",
        params={"next": next_url},
        data={"username": name, "password": PASSWORD, "_xsrf": xsrf or ""},
        headers={"Accept": "text/html"},
    )
    return client, response
