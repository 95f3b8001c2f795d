"""Routes of the core itself: ``/``, ``/api`` and ``/api/``, ``/api/status``, ``/api/shutdown``."""

from __future__ import annotations

import functools
from datetime import datetime
from typing import Annotated

import orjson
from fastapi import APIRouter, Request
from fastapi.responses import RedirectResponse, Response

from junction._version import __version__
from junction.fastroutes import fast_route
from junction.plugin import use
from junction.services import SERVER, ServerState, isoformat

__all__ = ["router"]

router = APIRouter()


@router.get("/", include_in_schema=False)
async def root(request: Request) -> RedirectResponse:
    """Send browsers to the landing page of the enabled plugins (the UI, or the API)."""
    target = request.app.state.landing_page
    query = request.url.query
    return RedirectResponse(target + ("?" + query if query else ""), status_code=302)


@router.get("/api", tags=["server"])
async def api_version() -> dict[str, str]:
    """The server's version."""
    return {"version": __version__}


@router.get("/api/", tags=["server"])
async def api_version_slash() -> dict[str, str]:
    """The server's version, for clients that join ``api/`` to the base URL.

    jupyter_server redirects every unmatched path ending in ``/`` to the path without it;
    answering at once spares those clients a round trip and works for clients that do not
    follow redirects (JupyterHub's readiness check).
    """
    return {"version": __version__}


@functools.lru_cache(maxsize=16)
def _isoformat(moment: datetime) -> str:
    # Pollers ask many times between two changes of either time.
    return isoformat(moment)


def _status_response(state: ServerState) -> Response:
    body = {
        "connections": state.gauge("connections"),
        "kernels": state.gauge("kernels"),
        "last_activity": _isoformat(state.last_activity),
        "started": _isoformat(state.started),
    }
    return Response(orjson.dumps(body), media_type="application/json")


async def _status_now(request: Request) -> Response:
    return _status_response(request.app.state.services.get(SERVER))


@router.get("/api/status", tags=["server"], response_model=None)
@fast_route(_status_now)
async def status(state: Annotated[ServerState, use(SERVER)]) -> Response:
    """When the server started, when it was last used, and how busy it is.

    Load balancers and culling services poll this, so it skips response-model validation
    and is answered by a fast route (:mod:`junction.fastroutes`).
    """
    return _status_response(state)


@router.post("/api/shutdown", tags=["server"], status_code=200)
async def shutdown(request: Request) -> Response:
    """Stop the server gracefully: every plugin's shutdown runs, then the process exits."""
    request.app.state.request_shutdown()
    return Response(status_code=200)
