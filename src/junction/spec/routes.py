"""``GET /api/spec.yaml``: the merged OpenAPI document of this server, as YAML.

As in Jupyter Server, it needs a login and is served as ``text/x-yaml``. It describes the
core and the enabled plugins only, with the server's base URL in ``servers``.
"""

from __future__ import annotations

from pathlib import Path

import anyio.to_thread
from fastapi import APIRouter, Request
from fastapi.responses import Response

from junction.spec.contract import Contract
from junction.spec.merge import merge_documents

__all__ = ["CORE", "core_contract", "core_public_paths", "core_routers", "router"]

CORE = "core"
"""The name the core's routes go by in spec files and commands."""

router = APIRouter()


def core_contract() -> Contract:
    """The core's spec files: ``junction/openapi.yaml``."""
    return Contract(Path(__file__).resolve().parent.parent)


def core_routers() -> list[APIRouter]:
    """The routers of the core itself, in the order the app includes them."""
    from junction.auth.routes import router as auth_router
    from junction.health import router as health_router
    from junction.metrics import router as metrics_router
    from junction.server_routes import router as server_router

    return [server_router, auth_router, router, health_router, metrics_router]


def core_public_paths() -> tuple[str, ...]:
    """Paths of the core served without credentials (as the auth gate lets them through)."""
    from junction.health import HEALTH_PATHS

    return ("login", "logout", "api/security/csp-report", *HEALTH_PATHS)


def _render(contracts: list[tuple[str, Contract]], base_url: str) -> bytes:
    from junction.spec.generate import dump

    document = merge_documents(contracts, base_url)
    return dump(document, "The HTTP API of this Junction server.").encode()


@router.get("/api/spec.yaml", response_model=None)
async def api_spec(request: Request) -> Response:
    """The OpenAPI 3.1 document of this server (core and enabled plugins), as YAML."""
    state = request.app.state
    body: bytes | None = getattr(state, "spec_yaml", None)
    if body is None:
        contracts = [(CORE, core_contract()), *state.composition.contracts.items()]
        body = await anyio.to_thread.run_sync(_render, contracts, state.settings.base_url)
        state.spec_yaml = body
    return Response(body, media_type="text/x-yaml")
