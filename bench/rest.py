"""A Jupyter REST client: log in with the token, start and stop kernels, read contents.

Authentication works for every server the same way a browser tab does: one request with
``?token=`` (which also sets whatever login cookie the server uses), then every request carries
``Authorization: token <t>`` and the cookies. jupyverse reads only its cookie; jupyter_server
and Junction read the header.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Any, Literal

import httpx

__all__ = ["JupyterClient", "StartedKernel", "Unavailable"]


class Unavailable(Exception):
    """The server does not offer what a scenario needs (a 404 on the route, for instance)."""


@dataclass(frozen=True)
class StartedKernel:
    """A kernel started through the REST API, and how (to stop it the same way)."""

    id: str
    via: Literal["kernels", "sessions"]
    session_id: str | None = None


class JupyterClient:
    """REST calls against one server, authenticated with its token."""

    def __init__(self, url: str, token: str, *, timeout: float = 120.0) -> None:
        self.url = url
        self.token = token
        self.http = httpx.AsyncClient(
            base_url=url,
            headers={"Authorization": f"token {token}"},
            timeout=timeout,
            limits=httpx.Limits(max_connections=20, max_keepalive_connections=20),
        )
        self.kernel_via: Literal["kernels", "sessions"] | None = None

    async def __aenter__(self) -> JupyterClient:
        await self.login()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.http.aclose()

    async def login(self) -> None:
        """Authenticate once with ``?token=``, keeping any cookie the server sets."""
        response = await self.http.get("api/status", params={"token": self.token})
        if response.status_code != 200:
            response = await self.http.get("api", params={"token": self.token})
        response.raise_for_status()

    def auth_headers(self) -> dict[str, str]:
        """Headers that authenticate a raw request (WebSocket, load generator)."""
        headers = {"Authorization": f"token {self.token}"}
        cookies = "; ".join(f"{name}={value}" for name, value in self.http.cookies.items())
        if cookies:
            headers["Cookie"] = cookies
        return headers

    async def start_kernel(self, name: str) -> StartedKernel:
        """Start a kernel with ``POST /api/kernels``, or ``POST /api/sessions`` when the server
        only creates kernels through sessions (jupyverse)."""
        if self.kernel_via != "sessions":
            response = await self.http.post("api/kernels", json={"name": name})
            if response.status_code in (200, 201):
                self.kernel_via = "kernels"
                return StartedKernel(response.json()["id"], "kernels")
            if response.status_code not in (404, 405) or self.kernel_via == "kernels":
                raise RuntimeError(f"POST /api/kernels: {response.status_code} {response.text}")
        path = f"bench-{uuid.uuid4().hex[:12]}.ipynb"
        response = await self.http.post(
            "api/sessions",
            json={"path": path, "name": path, "type": "notebook", "kernel": {"name": name}},
        )
        if response.status_code in (404, 405):
            raise Unavailable("no POST /api/kernels nor POST /api/sessions")
        if response.status_code not in (200, 201):
            raise RuntimeError(f"POST /api/sessions: {response.status_code} {response.text}")
        self.kernel_via = "sessions"
        body = response.json()
        return StartedKernel(body["kernel"]["id"], "sessions", body["id"])

    async def stop_kernel(self, kernel: StartedKernel) -> None:
        """Shut a kernel down the way it was started."""
        if kernel.via == "sessions" and kernel.session_id is not None:
            await self.http.delete(f"api/sessions/{kernel.session_id}")
        else:
            await self.http.delete(f"api/kernels/{kernel.id}")

    async def stop_all_kernels(self) -> None:
        """Delete every session and kernel the server knows (cleanup between scenarios)."""
        sessions = await self.http.get("api/sessions")
        if sessions.status_code == 200:
            for session in sessions.json():
                await self.http.delete(f"api/sessions/{session['id']}")
        kernels = await self.http.get("api/kernels")
        if kernels.status_code == 200:
            for kernel in kernels.json():
                await self.http.delete(f"api/kernels/{kernel['id']}")

    async def get_json(self, path: str, **params: Any) -> Any:
        """``GET`` a JSON resource; :class:`Unavailable` on 404."""
        response = await self.http.get(path, params=params)
        if response.status_code == 404:
            raise Unavailable(f"GET /{path}: 404")
        response.raise_for_status()
        return response.json()

    async def download(self, path: str, **params: Any) -> int:
        """Stream ``GET path`` to nowhere; returns the body size. :class:`Unavailable` on 404."""
        size = 0
        # identity: the fixture compresses well, and the scenario measures bytes moved.
        headers = {"Accept-Encoding": "identity"}
        async with self.http.stream("GET", path, params=params, headers=headers) as response:
            if response.status_code == 404:
                raise Unavailable(f"GET /{path}: 404")
            response.raise_for_status()
            async for chunk in response.aiter_raw(1 << 20):
                size += len(chunk)
        return size
