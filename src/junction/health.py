"""Health routes for load balancers and Kubernetes probes, served without authentication.

- ``GET /api/health/live``: the event loop answers (a liveness probe restarts a hung server).
- ``GET /api/health/ready``: every plugin has started, the server is not stopping, and every
  readiness check passes (the database answers, when the server has one); a readiness probe
  sends traffic elsewhere meanwhile.

Bodies reveal nothing about the server: ``{"status": "ok"}`` with 200, or
``{"status": "unavailable"}`` with 503.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

import anyio
from fastapi import APIRouter, Request
from fastapi.responses import Response

__all__ = ["HEALTH_PATHS", "Health", "ReadinessCheck", "router"]

log = logging.getLogger("junction.health")

HEALTH_PATHS = ("api/health/live", "api/health/ready")
"""The health routes relative to the base URL, public (no credentials needed)."""

CHECK_TIMEOUT = 2.0
"""Seconds a readiness check gets before it counts as failed."""

ReadinessCheck = Callable[[], Awaitable[None]]
"""An async function that returns when its part is ready, and raises when it is not."""

_OK = b'{"status":"ok"}'
_UNAVAILABLE = b'{"status":"unavailable"}'


@dataclass
class Health:
    """Whether the server is ready; the app factory flips :attr:`started` around its lifespan."""

    started: bool = False
    checks: list[ReadinessCheck] = field(default_factory=list)

    async def ready(self) -> bool:
        """True when plugins have started and every check passes within its time."""
        if not self.started:
            return False
        for check in self.checks:
            try:
                with anyio.fail_after(CHECK_TIMEOUT):
                    await check()
            except Exception as exc:
                log.warning("not ready: %s", exc or type(exc).__name__)
                return False
        return True


router = APIRouter(include_in_schema=False)


@router.get("/api/health/live")
async def health_live() -> Response:
    """200 whenever the event loop gets to answer."""
    return Response(_OK, media_type="application/json")


@router.get("/api/health/ready")
async def health_ready(request: Request) -> Response:
    """200 when the server can take traffic, else 503."""
    health: Health = request.app.state.health
    if await health.ready():
        return Response(_OK, media_type="application/json")
    return Response(_UNAVAILABLE, status_code=503, media_type="application/json")
