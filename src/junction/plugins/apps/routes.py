"""Routes of the apps plugin on Junction's origin: the REST API, ``/apps/{id}/`` (which hands
the viewer to the app host with a one-time code), the ``/apps`` page, jupyter-server-proxy's
``servers-info`` and same-origin ``/proxy/{port}/``."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Annotated, Any
from urllib.parse import parse_qsl, quote, urlencode

import anyio
from fastapi import APIRouter, Body, Depends, Request, Response, WebSocket
from fastapi.responses import HTMLResponse, PlainTextResponse, RedirectResponse, StreamingResponse
from starlette.requests import HTTPConnection, cookie_parser
from starlette.types import Receive, Scope, Send

from junction.auth.identity import User
from junction.auth.routes import CurrentUser
from junction.errors import Forbidden, NotFound, ServiceUnavailable
from junction.plugin import use
from junction.plugins.apps.manager import Credentials, SupervisedApps
from junction.plugins.apps.models import App, AppCreate, AppFiles, Sharing
from junction.plugins.apps.page import APPS_PAGE
from junction.plugins.apps.proxy import filter_query, proxy_http, proxy_websocket, upstream_headers
from junction.plugins.apps.service import APPS, AppService
from junction.plugins.contents.service import FileNotFound, Reach, check_path

__all__ = ["router"]

router = APIRouter(tags=["apps"])

KEEPALIVE_SECONDS = 15.0
"""A live log stream sends a comment this often while the app is quiet, and notices there
that the app was deleted or the server is stopping."""

_NOT_FOUND: dict[int | str, dict[str, Any]] = {
    404: {"description": "No such app, or not visible to this user"},
    403: {"description": "Visible, but only its owner (or an administrator) may manage it"},
}


async def _runtime(
    request: HTTPConnection, apps: Annotated[AppService, use(APPS)]
) -> SupervisedApps:
    """The plugin's own service; learns the port Junction really listens on (with
    ``--port 0``) from the socket a request came in on, never from its ``Host`` header."""
    if not isinstance(apps, SupervisedApps):
        raise ServiceUnavailable("the apps routes need the apps plugin's own service")
    server = request.scope.get("server")
    if server and server[1]:
        apps.learn_server_port(int(server[1]))
    return apps


Apps = Annotated[SupervisedApps, Depends(_runtime)]


@router.get("/api/apps")
async def list_apps(apps: Apps, user: CurrentUser) -> list[App]:
    """Every app the user may open, with its status and URL."""
    return await apps.list(user)


@router.get(
    "/api/apps/frameworks",
    responses={
        400: {"description": "A path outside the root"},
        404: {"description": "No such folder"},
    },
)
async def app_files(request: Request, apps: Apps, user: CurrentUser, path: str = "") -> AppFiles:
    """The files of folder ``path`` that a framework preset would run, by name: Python files
    that import Streamlit, Gradio, Dash, Panel or Bokeh, and notebooks (Voila). JupyterLab's
    "Open as app" menu item appears on those. Empty for a folder the user only sees into."""
    if await check_path(request, path, "read") is not Reach.FULL:
        return AppFiles(path=path.strip("/"), files={})
    return AppFiles(path=path.strip("/"), files=await apps.detect(path))


@router.post(
    "/api/apps",
    status_code=201,
    responses={400: {"description": "Unknown framework, missing file, path outside the root"}},
)
async def create_app(
    request: Request, apps: Apps, user: CurrentUser, body: Annotated[AppCreate, Body()]
) -> App:
    """Define an app from a framework preset and a file, or a command template, and start
    it; ``url`` opens it. The file must be one the user may read through the Contents API
    (their home, or what is shared with them): others are a 404, as there."""
    if body.path is not None and await check_path(request, body.path, "read") is not Reach.FULL:
        raise FileNotFound(f"No such file: {body.path}")
    return await apps.create(body, user)


@router.get("/api/apps/{app_id}", responses=_NOT_FOUND)
async def get_app(app_id: str, apps: Apps, user: CurrentUser) -> App:
    """One app: status (starting, ready, failed, stopped), reason, last output on failure."""
    return await apps.get(app_id, user)


@router.post("/api/apps/{app_id}/start", responses=_NOT_FOUND)
async def start_app(app_id: str, apps: Apps, user: CurrentUser) -> App:
    """Start a stopped or failed app."""
    return await apps.start(app_id, user)


@router.post("/api/apps/{app_id}/stop", responses=_NOT_FOUND)
async def stop_app(app_id: str, apps: Apps, user: CurrentUser) -> App:
    """Stop an app's process group."""
    return await apps.stop(app_id, user)


@router.post("/api/apps/{app_id}/restart", responses=_NOT_FOUND)
async def restart_app(app_id: str, apps: Apps, user: CurrentUser) -> App:
    """Stop, then start an app."""
    return await apps.restart(app_id, user)


@router.delete("/api/apps/{app_id}", status_code=204, responses=_NOT_FOUND)
async def delete_app(app_id: str, apps: Apps, user: CurrentUser) -> Response:
    """Stop an app and forget it."""
    await apps.delete(app_id, user)
    return Response(status_code=204)


@router.put("/api/apps/{app_id}/sharing", responses=_NOT_FOUND)
async def share_app(
    app_id: str, apps: Apps, user: CurrentUser, body: Annotated[Sharing, Body()]
) -> App:
    """Replace who may open the app: users, groups, everyone logged in, or the public."""
    return await apps.share(app_id, body, user)


@router.get(
    "/api/apps/{app_id}/logs",
    responses={**_NOT_FOUND, 200: {"content": {"text/plain": {}, "text/event-stream": {}}}},
    response_class=PlainTextResponse,
)
async def app_logs(app_id: str, apps: Apps, user: CurrentUser, follow: bool = False) -> Response:
    """The app's recent output (text); with ``follow=1`` a server-sent event stream: one
    event per chunk of output, its data a JSON string, starting with what is kept."""
    await apps.get(app_id, user, manage=True)
    logs = apps.process(app_id).logs
    if not follow:
        return PlainTextResponse(logs.text())

    async def events() -> AsyncIterator[bytes]:
        position = logs.total - len(logs)
        while not apps.closed.is_set() and app_id in apps.records:
            chunk = logs.since(position)
            position = logs.total
            if chunk:
                text = chunk.decode(errors="replace")
                yield f"data: {json.dumps(text)}\n\n".encode()
            else:
                yield b": keep-alive\n\n"
            with anyio.move_on_after(KEEPALIVE_SECONDS):
                await logs.wait_beyond(position)

    headers = {"cache-control": "no-store", "x-accel-buffering": "no"}
    return StreamingResponse(events(), media_type="text/event-stream", headers=headers)


@router.get("/apps/{app_id}/{path:path}", responses=_NOT_FOUND, response_class=RedirectResponse)
async def open_app(
    app_id: str, path: str, request: Request, apps: Apps, user: CurrentUser
) -> Response:
    """Hand the (logged-in) viewer to the app's host: a redirect carrying a one-time code
    (single use, 30 s, bound to this app) that the app host exchanges for its own cookie."""
    await apps.get(app_id, user)
    cookies = cookie_parser(request.headers.get("cookie", ""))
    credentials = Credentials(
        query_token=dict(parse_qsl(request.url.query)).get("token"),
        header=request.headers.get("authorization"),
        cookie=cookies.get(apps.auth.cookie_name),
    )
    code = apps.issue_code(app_id, user, credentials)
    query = filter_query(request.scope.get("query_string", b""))
    target = "/" + quote(path) + (f"?{query}" if query else "")
    url = f"{apps.app_origin(app_id)}_junction/auth?" + urlencode({"code": code, "next": target})
    return RedirectResponse(url, 302, headers={"cache-control": "no-store"})


@router.get("/apps", response_class=HTMLResponse)
async def apps_page() -> HTMLResponse:
    """The apps page: launch from a file, list, open, stop, restart, live logs."""
    return HTMLResponse(APPS_PAGE)


@router.get("/server-proxy/servers-info")
async def servers_info(apps: Apps, user: CurrentUser) -> dict[str, Any]:
    """jupyter-server-proxy's list of servers, so its launcher tiles open these apps."""
    return {
        "server_processes": [
            {
                "name": record.id,
                "launcher_entry": {
                    "enabled": True,
                    "title": record.spec["name"],
                    "path_info": f"apps/{record.id}/",
                    "category": "Notebook",
                },
                "new_browser_tab": True,
            }
            for record in apps.iter_visible(user)
        ]
    }


# -- /proxy/{port}/: same origin, as jupyter-server-proxy ----------------------------------


def _port_allowed(apps: SupervisedApps, port: int, conn: HTTPConnection) -> None:
    if not apps.settings.port_proxy or apps.auth.identity is not None:
        raise NotFound("the port proxy is off")
    server = conn.scope.get("server")
    own = {apps.apps_port, apps.server_port, *apps.server_ports}
    if server and server[1]:
        own.add(int(server[1]))
    if not 0 < port < 65536 or port in own:
        raise Forbidden(f"port {port} may not be proxied")


class _Proxied(Response):
    """A response that forwards the whole exchange to a loopback port."""

    def __init__(self, apps: SupervisedApps, port: int, path: str, user: User) -> None:
        self.apps, self.port, self.path, self.user = apps, port, path, user
        self.background = None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        headers = upstream_headers(
            scope["headers"],
            junction_cookie=self.apps.same_origin_cookie,
            junction_token=self.apps.is_junction_token,
            client_ip=(scope.get("client") or ("", 0))[0],
            scheme=scope.get("scheme", "http"),
            prefix=f"{self.apps.base_url}proxy/{self.port}/",
            user=self.user.username,
        )
        await proxy_http(
            scope,
            receive,
            send,
            client=self.apps.client,
            port=self.port,
            path="/" + self.path,
            headers=headers,
            junction_cookie=self.apps.same_origin_cookie,
            unreachable_status=404,
        )


@router.api_route(
    "/proxy/{port}/{path:path}",
    methods=["GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS"],
    responses={
        200: {"description": "Whatever the port answers", "content": {"*/*": {}}},
        404: {"description": "The port proxy is off, or nothing answers on that port"},
        403: {"description": "Junction's own ports may not be proxied"},
    },
)
async def port_proxy(
    request: Request, port: int, path: str, apps: Apps, user: CurrentUser
) -> Response:
    """Forward to a loopback port (prefix stripped), without Junction's credentials. Off
    with the users plugin; pages served here share Junction's origin."""
    _port_allowed(apps, port, request)
    return _Proxied(apps, port, path, user)


@router.websocket("/proxy/{port}/{path:path}")
async def port_proxy_websocket(
    websocket: WebSocket, port: int, path: str, apps: Apps, user: CurrentUser
) -> None:
    """The WebSocket side of ``/proxy/{port}/``."""
    _port_allowed(apps, port, websocket)
    scope = websocket.scope
    headers = upstream_headers(
        scope["headers"],
        junction_cookie=apps.same_origin_cookie,
        junction_token=apps.is_junction_token,
        client_ip=(scope.get("client") or ("", 0))[0],
        scheme="https" if scope.get("scheme") == "wss" else "http",
        prefix=f"{apps.base_url}proxy/{port}/",
        user=user.username,
        websocket=True,
    )
    await proxy_websocket(
        scope,
        websocket.receive,
        websocket.send,
        port=port,
        path="/" + path,
        headers=headers,
        max_size=apps.settings.websocket_max_message_size,
        on_message=lambda: None,
    )
