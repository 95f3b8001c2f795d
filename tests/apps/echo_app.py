"""A test app: echoes every request's headers, sets cookies, and echoes WebSocket messages.

Run as ``python echo_app.py PORT``. ``GET /headers`` answers the request's headers, path and
query as JSON; ``GET /set-cookies`` sets an app cookie and cookies named like Junction's;
``/ws`` echoes messages (text as text, bytes as bytes) and reports the chosen subprotocol;
``GET /flood?n=N`` prints N lines of output; ``GET /bytes?n=N`` streams N bytes;
everything else answers "ok".
"""

from __future__ import annotations

import json
import sys
from collections.abc import AsyncIterator

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response, StreamingResponse
from starlette.routing import Route, WebSocketRoute
from starlette.websockets import WebSocket


async def headers(request: Request) -> Response:
    """The request as the app saw it."""
    return JSONResponse(
        {
            "headers": [[k, v] for k, v in request.headers.items()],
            "path": request.url.path,
            "query": request.url.query,
        }
    )


async def set_cookies(request: Request) -> Response:
    """One app cookie and two cookies that would clobber Junction's."""
    response = PlainTextResponse("cookies")
    response.raw_headers.append((b"set-cookie", b"app_cookie=keep; Path=/"))
    response.raw_headers.append((b"set-cookie", b"junction-app=stolen; Path=/"))
    response.raw_headers.append((b"set-cookie", request.query_params["name"].encode() + b"=x"))
    return response


async def flood(request: Request) -> Response:
    """Write many lines of output."""
    for i in range(int(request.query_params["n"])):
        print(f"flood line {i} " + "x" * 100, flush=True)
    return PlainTextResponse("flooded")


async def payload(request: Request) -> Response:
    """``n`` bytes, streamed in 1 MiB chunks (for downloads through the proxy)."""
    size = int(request.query_params["n"])
    chunk = b"x" * (1 << 20)

    async def chunks() -> AsyncIterator[bytes]:
        left = size
        while left > 0:
            yield chunk[: min(left, len(chunk))]
            left -= len(chunk)

    return StreamingResponse(chunks(), headers={"content-length": str(size)})


async def index(request: Request) -> Response:
    """Anything else."""
    return PlainTextResponse("ok")


async def echo(websocket: WebSocket) -> None:
    """Echo messages; the first message sent is the chosen subprotocol."""
    offered = websocket.scope.get("subprotocols", [])
    chosen = offered[-1] if offered else None
    await websocket.accept(subprotocol=chosen)
    await websocket.send_text(json.dumps({"subprotocol": chosen, "offered": offered}))
    while True:
        message = await websocket.receive()
        if message["type"] == "websocket.disconnect":
            return
        if message.get("bytes") is not None:
            await websocket.send_bytes(message["bytes"])
        else:
            await websocket.send_text(message["text"])


app = Starlette(
    routes=[
        Route("/headers", headers),
        Route("/set-cookies", set_cookies),
        Route("/flood", flood),
        Route("/bytes", payload),
        Route("/{path:path}", index),
        WebSocketRoute("/ws", echo),
    ]
)

if __name__ == "__main__":
    import uvicorn

    print("echo app starting", flush=True)
    uvicorn.run(
        app, host="127.0.0.1", port=int(sys.argv[1]), ws_max_size=64 << 20, log_level="warning"
    )
