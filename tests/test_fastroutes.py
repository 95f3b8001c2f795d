"""Fast routes: a twin answers only what its endpoint would, and answers it identically."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import APIRouter, Request
from fastapi.responses import Response

import junction.fastroutes
from junction.errors import NotFound
from junction.fastroutes import build_table, fast_route
from junction.plugin import Plugin
from junction.testing import app_client

pytestmark = pytest.mark.anyio


def _answer(who: str, request: Request) -> Response:
    body = f"{who} {request.path_params.get('path', '')}".encode()
    return Response(body, media_type="text/plain")


async def _twin(request: Request) -> Response:
    if request.path_params.get("path") == "missing":
        raise NotFound("no such thing")
    return _answer("twin", request)


def _things_plugin() -> Plugin:
    """Routes in FastAPI's order: an earlier, more specific route, then the twinned one."""
    router = APIRouter()

    @router.get("/api/things/{path:path}/special")
    async def special(path: str, request: Request) -> Response:
        return _answer("special", request)

    @router.post("/api/things/{path:path}")
    async def create(path: str, request: Request) -> Response:
        return _answer("create", request)

    @router.get("/api/things/{path:path}")
    @fast_route(_twin)
    async def read(path: str, request: Request) -> Response:
        if path == "missing":
            raise NotFound("no such thing")
        return _answer("endpoint", request)

    return Plugin(name="things", description="routes for the fast-route tests", routers=[router])


async def test_a_twinned_route_is_answered_by_its_twin() -> None:
    async with app_client(plugins=[_things_plugin()]) as client:
        response = await client.get("/api/things/a/b")
    assert (response.status_code, response.text) == (200, "twin a/b")
    assert response.headers["x-content-type-options"] == "nosniff"  # the gate still ran


async def test_an_earlier_route_keeps_its_requests() -> None:
    async with app_client(plugins=[_things_plugin()]) as client:
        special = await client.get("/api/things/a/special")
        created = await client.post("/api/things/a", content=b"{}")
    assert (special.status_code, special.text) == (200, "special a")
    assert (created.status_code, created.text) == (200, "create a")


async def test_a_method_the_route_lacks_goes_to_fastapi() -> None:
    async with app_client(plugins=[_things_plugin()]) as client:
        response = await client.delete("/api/things/a")
    assert response.status_code == 405
    assert response.json()["reason"] == "Method Not Allowed"


async def test_a_twins_error_gets_the_apps_error_body() -> None:
    async with app_client(plugins=[_things_plugin()]) as client:
        response = await client.get("/api/things/missing")
    assert response.status_code == 404
    assert response.json() == {"message": "no such thing", "reason": "Not Found"}


async def test_twins_are_behind_the_gate() -> None:
    async with app_client(plugins=[_things_plugin()], authenticated=False) as client:
        things = await client.get("/api/things/a")
        status = await client.get("/api/status")
    assert things.status_code == 403
    assert status.status_code == 403


def test_the_table_lists_each_twin_with_the_routes_that_may_take_its_requests() -> None:
    from junction.app import create_app
    from junction.testing import make_settings

    app = create_app(make_settings(base_url="/user/x/"), plugins=[_things_plugin()])
    table = build_table(app)
    assert table is not None
    patterns = {entry.route.regex.pattern: entry for entry in table["GET"]}
    things = patterns["^/user/x/api/things/(?P<path>.*)$"]
    assert [shadow.regex.pattern for shadow in things.shadows] == [
        "^/user/x/api/things/(?P<path>.*)/special$",
        "^/user/x/api/things/(?P<path>.*)$",  # the POST route: taken only by POST
    ]
    assert "^/user/x/api/status$" in patterns


# -- the core's and the contents plugin's twins answer as their endpoints do --------------


@asynccontextmanager
async def _client(tmp_path: Path, *, fast: bool) -> AsyncIterator[Any]:
    with pytest.MonkeyPatch.context() as patch:
        if not fast:
            patch.setattr(junction.fastroutes, "twin_of", lambda endpoint: None)
        async with app_client(root_dir=str(tmp_path), enable=["contents"]) as client:
            yield client


_SAME_PATHS = [
    "/api/status",
    "/api/contents",
    "/api/contents?content=0",
    "/api/contents/small.txt",
    "/api/contents/small.txt?content=1&format=base64&hash=1",
    "/api/contents/notes.ipynb",
    "/api/contents/dir",
    "/api/contents/dir?limit=1",
    "/api/contents/missing.txt",
    "/api/contents/small.txt?format=bad",
    "/api/contents/small.txt?type=directory",
    "/api/contents/dir?limit=0",
    "/api/contents/dir?limit=1&order=directory",
    "/api/contents/dir?limit=1&order=directory&after=d1.1.YS50eHQ",
    "/api/contents/dir?limit=1&order=directory&after=a.txt",
    "/api/contents/dir?limit=1&order=foo",
    "/api/contents/dir?order=directory",
    "/api/contents/small.txt/checkpoints",
    "/api/contents/.hidden",
    "/api/contents/../etc/passwd",
]


def _comparable(response: httpx.Response) -> tuple[int, list[tuple[str, str]], bytes]:
    headers = sorted(
        (name, value) for name, value in response.headers.items() if name != "x-request-id"
    )
    return response.status_code, headers, response.content


async def test_the_twins_answer_byte_for_byte_as_the_endpoints(tmp_path: Path) -> None:
    (tmp_path / "small.txt").write_text("hello\n")
    (tmp_path / "notes.ipynb").write_text(
        '{"cells": [], "metadata": {}, "nbformat": 4, "nbformat_minor": 5}'
    )
    (tmp_path / "dir").mkdir()
    (tmp_path / "dir" / "a.txt").write_text("a")
    (tmp_path / "dir" / "b.txt").write_text("b")
    (tmp_path / ".hidden").write_text("secret")
    answers: dict[bool, list[tuple[int, list[tuple[str, str]], bytes]]] = {}
    for fast in (False, True):
        async with _client(tmp_path, fast=fast) as client:
            answers[fast] = [_comparable(await client.get(path)) for path in _SAME_PATHS]
            if fast:
                status = await client.get("/api/status")
                table = build_table(client.app)
    assert table is not None
    assert {entry.route.regex.pattern for entry in table["GET"]} == {
        "^/api/status$",
        "^/api/contents$",
        "^/api/contents/(?P<path>.*)$",
    }
    for path, slow, quick in zip(_SAME_PATHS, answers[False], answers[True], strict=True):
        if path == "/api/status":  # a new server: other start times, same shape
            assert slow[:2] == quick[:2]
            continue
        assert slow == quick, path
    assert status.json().keys() == {"connections", "kernels", "last_activity", "started"}
