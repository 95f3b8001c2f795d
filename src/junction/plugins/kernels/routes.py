"""HTTP and WebSocket routes of the kernels API: validate, call the service, return models."""

from __future__ import annotations

import contextlib
from typing import Annotated, Any

from fastapi import APIRouter, Body, Depends, Response, WebSocket
from fastapi.responses import JSONResponse
from starlette.requests import HTTPConnection

from junction.auth.limits import LIMITS
from junction.auth.middleware import current_user
from junction.auth.ownership import may_access, method_action
from junction.errors import Forbidden, ServiceUnavailable
from junction.events import emit_event
from junction.eventschemas import KERNEL_ACTIONS, kernel_action
from junction.plugin import use
from junction.plugins.contents.service import check_path
from junction.plugins.kernels.connection import serve_channels
from junction.plugins.kernels.manager import JupyterClientKernels
from junction.plugins.kernels.models import Kernel, StartKernel
from junction.plugins.kernels.service import KERNELS, KernelNotFound, KernelService
from junction.services import AUTH

__all__ = ["router"]

router = APIRouter(tags=["kernels"])

Kernels = Annotated[KernelService, use(KERNELS)]


async def _runtime(kernels: Kernels) -> JupyterClientKernels:  # async: no worker thread
    """The kernels plugin's own implementation, which its routes are written for."""
    if not isinstance(kernels, JupyterClientKernels):
        raise ServiceUnavailable("the kernels routes need the kernels plugin's own service")
    return kernels


Runtime = Annotated[JupyterClientKernels, Depends(_runtime)]


async def _owned(conn: HTTPConnection, kernel_id: str, runtime: Runtime) -> None:
    """Another user's kernel looks missing (404), as jupyter_server's authorizer would not."""
    await runtime.learn_owner(kernel_id)  # a kernel of another server: its record says
    if not may_access(conn, "kernels", kernel_id, method_action(conn)):
        raise KernelNotFound(kernel_id)


Owned = [Depends(_owned)]

_NOT_FOUND: dict[int | str, dict[str, Any]] = {404: {"description": "No such kernel"}}


@router.get(
    "/api/kernels",
    response_model_exclude_none=True,
    responses={403: {"description": "Listing is off (kernels.list_kernels = false)"}},
)
async def list_kernels(conn: HTTPConnection, runtime: Runtime) -> list[Kernel]:
    """Every running kernel; 403 when ``kernels.list_kernels`` is off."""
    if not runtime.settings.list_kernels:
        raise Forbidden(
            "Listing kernels is turned off on this server (kernels.list_kernels = false); "
            "ask for a kernel by its id"
        )
    return [k for k in await runtime.list() if may_access(conn, "kernels", k.id, "read")]


@router.post(
    "/api/kernels",
    status_code=201,
    response_model_exclude_none=True,
    responses={
        400: {"description": "Bad kernel_id, path, or env outside kernels.allowed_env"},
        403: {"description": "kernels.max_kernels reached"},
        404: {"description": "No such kernel spec"},
        503: {"description": "The kernel failed to start or to run the seed notebook"},
    },
)
async def start_kernel(
    conn: HTTPConnection,
    runtime: Runtime,
    response: Response,
    body: Annotated[StartKernel | None, Body()] = None,
) -> Kernel:
    """Start a kernel (the default spec unless ``name`` is given); 201 with ``Location``."""
    request = body or StartKernel()
    runtime.check_env(request.env)
    if request.path:  # multi-user mode: only a folder the caller reaches can be the cwd
        await check_path(conn, request.path, "read")
    limits = conn.app.state.services.get_optional(LIMITS)
    if limits is not None:
        running = [k.id for k in await runtime.list()]
        limits.check("kernels", current_user(conn.scope), running)
    user = current_user(conn.scope)
    kernel = await runtime.start(
        name=request.name,
        path=request.path,
        env=request.env,
        kernel_id=request.kernel_id,
        owner=user.username,
    )
    conn.app.state.services.get(AUTH).record_owner("kernels", kernel.id, user)
    emit_event(conn, KERNEL_ACTIONS, kernel_action("start", kernel.id, kernel.name))
    response.headers["Location"] = f"{runtime.base_url}api/kernels/{kernel.id}"
    return kernel


@router.get(
    "/api/kernels/{kernel_id}",
    response_model_exclude_none=True,
    responses=_NOT_FOUND,
    dependencies=Owned,
)
async def get_kernel(kernel_id: str, kernels: Kernels) -> Kernel:
    """One kernel's model."""
    return await kernels.get(kernel_id)


@router.delete(
    "/api/kernels/{kernel_id}", status_code=204, responses=_NOT_FOUND, dependencies=Owned
)
async def shutdown_kernel(conn: HTTPConnection, kernel_id: str, kernels: Kernels) -> Response:
    """Shut a kernel down; its WebSockets close with code 1000."""
    await kernels.shutdown(kernel_id)
    emit_event(conn, KERNEL_ACTIONS, kernel_action("shutdown", kernel_id))
    return Response(status_code=204)


@router.post(
    "/api/kernels/{kernel_id}/interrupt", status_code=204, responses=_NOT_FOUND, dependencies=Owned
)
async def interrupt_kernel(conn: HTTPConnection, kernel_id: str, kernels: Kernels) -> Response:
    """Interrupt what the kernel runs (SIGINT or ``interrupt_request``, per its spec)."""
    await kernels.interrupt(kernel_id)
    emit_event(conn, KERNEL_ACTIONS, kernel_action("interrupt", kernel_id))
    return Response(status_code=204)


@router.post(
    "/api/kernels/{kernel_id}/restart",
    response_model_exclude_none=True,
    responses={
        **_NOT_FOUND,
        409: {"description": "The kernel is shutting down"},
        503: {
            "description": "The kernel failed to restart, or runs on another server, which "
            "did not restart it within kernels.remote_restart_timeout"
        },
    },
    dependencies=Owned,
)
async def restart_kernel(conn: HTTPConnection, kernel_id: str, kernels: Kernels) -> Kernel:
    """Restart a kernel in place; attached WebSockets stay attached."""
    kernel = await kernels.restart(kernel_id)
    emit_event(conn, KERNEL_ACTIONS, kernel_action("restart", kernel_id, kernel.name))
    return kernel


@router.websocket("/api/kernels/{kernel_id}/channels")
async def kernel_channels(
    websocket: WebSocket, kernel_id: str, runtime: Runtime, session_id: str | None = None
) -> None:
    """The kernel's messages: JSON, or ``v1.kernel.websocket.jupyter.org`` when offered."""
    async with contextlib.AsyncExitStack() as stack:
        try:
            await runtime.learn_owner(kernel_id)
            if not may_access(websocket, "kernels", kernel_id, "execute"):
                raise KernelNotFound(kernel_id)
            hub = await stack.enter_async_context(runtime.hub_for(kernel_id))
        except (KernelNotFound, ServiceUnavailable) as exc:
            denial = JSONResponse(exc.body(), status_code=exc.status_code)
            await websocket.send_denial_response(denial)
            return
        await serve_channels(
            websocket,
            hub,
            session_id=session_id,
            max_message_size=runtime.max_message_size,
            keep_for_reconnect=runtime.settings.reconnect_window > 0,
            stats=runtime.wire_stats,
        )
