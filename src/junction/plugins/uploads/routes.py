"""HTTP routes of the tus protocol at ``/api/uploads``: OPTIONS, POST, HEAD, PATCH, DELETE.

Every answer carries ``Tus-Resumable`` and ``Cache-Control: no-store``, errors included,
so :class:`TusRoute` turns the domain errors into their JSON body itself (the body the
core's handler writes, with those headers added; none for ``HEAD``).
"""

from __future__ import annotations

from collections.abc import AsyncGenerator, Callable, Coroutine
from contextlib import aclosing
from typing import Annotated, Any

from fastapi import APIRouter, Request, Response
from fastapi.responses import JSONResponse
from fastapi.routing import APIRoute
from starlette.requests import ClientDisconnect, HTTPConnection

from junction.auth.middleware import current_user
from junction.errors import Forbidden, HTTPError
from junction.plugin import use
from junction.plugins.contents.service import CONTENTS, ContentsService, check_path, home_of
from junction.plugins.uploads.models import Upload
from junction.plugins.uploads.placing import normalize
from junction.plugins.uploads.protocol import (
    CHECKSUMS,
    EXTENSIONS,
    OFFSET_OCTET_STREAM,
    TUS_VERSION,
    TusVersionMismatch,
    UnsupportedMediaType,
    http_date,
    new_upload,
    parse_checksum,
    parse_offset,
)
from junction.plugins.uploads.service import UPLOADS, UploadService
from junction.services import AUTH

__all__ = ["TusRoute", "router"]


class TusRoute(APIRoute):
    """A route that checks ``Tus-Resumable`` and adds the tus headers to every answer."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        """Wrap FastAPI's handler: version check before, headers after, errors included."""
        handler = super().get_route_handler()

        async def tus_handler(request: Request) -> Response:
            try:
                if request.method != "OPTIONS":
                    version = request.headers.get("tus-resumable")
                    if version != TUS_VERSION:
                        raise TusVersionMismatch(
                            f"Tus-Resumable must be {TUS_VERSION}, not {version!r}"
                        )
                response = await handler(request)
            except HTTPError as exc:
                if request.method == "HEAD":
                    response = Response(status_code=exc.status_code)
                else:
                    response = JSONResponse(exc.body(), status_code=exc.status_code)
                if isinstance(exc, TusVersionMismatch):
                    response.headers["Tus-Version"] = TUS_VERSION
            response.headers["Tus-Resumable"] = TUS_VERSION
            response.headers["Cache-Control"] = "no-store"
            return response

        return tus_handler


router = APIRouter(tags=["uploads"], route_class=TusRoute)

Uploads = Annotated[UploadService, use(UPLOADS)]
Contents = Annotated[ContentsService, use(CONTENTS)]

_TUS: dict[int | str, dict[str, Any]] = {
    400: {"description": "A malformed tus header, or a bad destination path"},
    404: {"description": "No such upload (unknown, expired, terminated, or another user's)"},
    412: {"description": "Tus-Resumable is missing or not 1.0.0"},
}


def _owner(conn: HTTPConnection) -> str:
    return str(current_user(conn.scope).username)


def _check_contents(conn: HTTPConnection) -> None:
    """In multi-user mode an upload writes contents: the caller needs that right."""
    auth = conn.app.state.services.get(AUTH)
    if auth.identity is None:
        return
    if not auth.authorizer.is_authorized(current_user(conn.scope), "write", "contents"):
        raise Forbidden("Not allowed to write contents")


def _location(request: Request, upload: Upload) -> str:
    return f"{request.app.state.settings.base_url}api/uploads/{upload.id}"


def _progress(upload: Upload) -> dict[str, str]:
    return {"Upload-Offset": str(upload.offset), "Upload-Expires": http_date(upload.expires)}


async def _body(request: Request) -> AsyncGenerator[bytes, None]:
    """The request body as it arrives; a client that goes away simply ends it."""
    try:
        async for chunk in request.stream():
            if chunk:
                yield chunk
    except ClientDisconnect:
        return


def _declared(request: Request) -> int | None:
    value = request.headers.get("content-length")
    return parse_offset(value, "Content-Length") if value is not None else None


@router.options("/api/uploads", status_code=204, response_class=Response)
async def tus_options(uploads: Uploads) -> Response:
    """What this server speaks of tus: version, extensions, largest size, checksums."""
    headers = {
        "Tus-Version": TUS_VERSION,
        "Tus-Extension": EXTENSIONS,
        "Tus-Max-Size": str(uploads.max_size),
        "Tus-Checksum-Algorithm": ",".join(CHECKSUMS),
    }
    return Response(status_code=204, headers=headers)


@router.post(
    "/api/uploads",
    status_code=201,
    response_class=Response,
    responses={
        **_TUS,
        403: {"description": "Not allowed to write there, or the user's uploads are used up"},
        409: {"description": "The destination exists (without 'overwrite' metadata)"},
        413: {"description": "Upload-Length is above Tus-Max-Size"},
        460: {"description": "The body does not match Upload-Checksum"},
    },
)
async def create_upload(request: Request, uploads: Uploads, contents: Contents) -> Response:
    """Create an upload (``Upload-Length``, ``Upload-Metadata`` with ``filename`` and
    ``path``); with an ``application/offset+octet-stream`` body, its first bytes too.

    Answers 201 with ``Location``, the upload's URL for ``HEAD``, ``PATCH`` and ``DELETE``.
    """
    _check_contents(request)
    asked = new_upload(request.headers, home_of(request))
    destination = normalize(asked.destination, allow_hidden=contents.settings.allow_hidden)
    await check_path(request, destination, "write")
    owner = _owner(request)
    upload = await uploads.create(asked, owner)
    headers = {"Location": _location(request, upload), **_progress(upload)}
    if request.headers.get("content-type", "").lower().startswith(OFFSET_OCTET_STREAM):
        checksum = parse_checksum(request.headers.get("upload-checksum"))
        try:
            async with aclosing(_body(request)) as body:
                upload = await uploads.append(
                    upload.id, owner, 0, body, declared=_declared(request), checksum=checksum
                )
        except HTTPError:
            await uploads.terminate(upload.id, owner)
            raise
        headers.update(_progress(upload))
    return Response(status_code=201, headers=headers)


@router.head(
    "/api/uploads/{upload_id}",
    response_class=Response,
    responses={**_TUS, 200: {"description": "Upload-Offset, Upload-Length, Upload-Metadata"}},
)
async def upload_offset(request: Request, upload_id: str, uploads: Uploads) -> Response:
    """How many bytes the server has: resume with a ``PATCH`` at ``Upload-Offset``."""
    upload = await uploads.get(upload_id, _owner(request))
    headers = {**_progress(upload), "Upload-Length": str(upload.length)}
    if upload.metadata:
        headers["Upload-Metadata"] = upload.metadata
    return Response(status_code=200, headers=headers)


@router.patch(
    "/api/uploads/{upload_id}",
    status_code=204,
    response_class=Response,
    responses={
        **_TUS,
        409: {"description": "Upload-Offset is not the server's, or the destination appeared"},
        413: {"description": "The body goes past Upload-Length"},
        415: {"description": "Content-Type is not application/offset+octet-stream"},
        460: {"description": "The body does not match Upload-Checksum"},
        507: {"description": "The disk is full"},
    },
)
async def append_upload(request: Request, upload_id: str, uploads: Uploads) -> Response:
    """Append the body at ``Upload-Offset``; answers 204 with the new ``Upload-Offset``.

    The last byte moves the file into place at its destination.
    """
    owner = _owner(request)
    upload = await uploads.get(upload_id, owner)  # an unknown id is 404 whatever the headers
    if not request.headers.get("content-type", "").lower().startswith(OFFSET_OCTET_STREAM):
        raise UnsupportedMediaType(f"a PATCH body must be {OFFSET_OCTET_STREAM}")
    offset = parse_offset(request.headers.get("upload-offset"), "Upload-Offset")
    checksum = parse_checksum(request.headers.get("upload-checksum"))
    _check_contents(request)
    await check_path(request, upload.destination, "write")
    async with aclosing(_body(request)) as body:
        upload = await uploads.append(
            upload_id, owner, offset, body, declared=_declared(request), checksum=checksum
        )
    return Response(status_code=204, headers=_progress(upload))


@router.delete("/api/uploads/{upload_id}", status_code=204, response_class=Response, responses=_TUS)
async def terminate_upload(request: Request, upload_id: str, uploads: Uploads) -> Response:
    """Terminate an upload: its bytes and record are deleted."""
    await uploads.terminate(upload_id, _owner(request))
    return Response(status_code=204)
