"""The spec generator: what it makes of routers, and what it keeps of reviewed files."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml
from fastapi import APIRouter, WebSocket
from fastapi.responses import HTMLResponse, RedirectResponse
from pydantic import BaseModel

from junction.errors import NotFound
from junction.spec.contract import Contract, check_described
from junction.spec.generate import MANUAL, openapi_document, reconcile, write_contract


class Thing(BaseModel):
    """A thing."""

    name: str


router = APIRouter()


@router.get("/api/things/{name}")
async def get_thing(name: str) -> Thing:
    """One thing by name."""
    raise NotFound(name)


@router.post("/api/things", status_code=201)
async def create_thing(thing: Thing) -> Thing:
    """Create a thing."""
    return thing


@router.api_route("/things/{path:path}", methods=["GET", "HEAD"], include_in_schema=False)
async def thing_page(path: str) -> HTMLResponse:
    """The page of a thing."""
    return HTMLResponse("<p>thing</p>")


@router.get("/public/old")
async def old_page() -> RedirectResponse:
    """Moved."""
    return RedirectResponse("/things/")


@router.websocket("/api/things/{name}/feed")
async def thing_feed(websocket: WebSocket, name: str) -> None:
    """Changes to a thing."""


def generate() -> dict[str, Any]:
    """The generated document of the demo router (``public/`` is public)."""
    return openapi_document("things", "Things.", [router], public_paths=["public/"])


def test_every_http_route_is_generated_with_openapi_paths() -> None:
    paths = generate()["paths"]
    assert set(paths) == {"/api/things/{name}", "/api/things", "/things/{path}", "/public/old"}
    assert set(paths["/things/{path}"]) == {"get", "head"}


def test_operations_are_tagged_and_named_after_the_plugin() -> None:
    paths = generate()["paths"]
    assert paths["/api/things/{name}"]["get"]["tags"] == ["things"]
    assert paths["/api/things/{name}"]["get"]["operationId"] == "things.get_thing"
    assert paths["/things/{path}"]["head"]["operationId"] == "things.thing_page_head"
    assert paths["/api/things"]["post"]["description"] == "Create a thing."


def test_errors_are_jupyter_bodies_and_validation_is_400() -> None:
    create = generate()["paths"]["/api/things"]["post"]
    assert "422" not in create["responses"]
    error = {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}
    assert create["responses"]["400"]["content"] == error
    assert create["responses"]["403"]["content"] == error
    schemas = generate()["components"]["schemas"]
    assert "HTTPValidationError" not in schemas
    assert schemas["Error"]["required"] == ["message", "reason"]


def test_a_path_parameter_may_name_nothing() -> None:
    assert "404" in generate()["paths"]["/api/things/{name}"]["get"]["responses"]
    assert "404" not in generate()["paths"]["/api/things"]["post"]["responses"]


def test_public_routes_have_no_security_and_no_403() -> None:
    old = generate()["paths"]["/public/old"]["get"]
    assert old["security"] == []
    assert "403" not in old["responses"]
    assert generate()["paths"]["/api/things"]["post"]["security"] == [
        {"token": []},
        {"token_query": []},
        {"cookie": []},
    ]


def test_pages_are_html_and_redirects_are_302() -> None:
    paths = generate()["paths"]
    page = paths["/things/{path}"]["get"]["responses"]["200"]
    assert page["content"] == {"text/html": {"schema": {"type": "string"}}}
    old = paths["/public/old"]["get"]["responses"]
    assert set(old) == {"302"}
    assert "Location" in old["302"]["headers"]


def test_reconcile_keeps_what_reviewers_added() -> None:
    reviewed = generate()
    get = reviewed["paths"]["/api/things/{name}"]["get"]
    get["responses"]["410"] = {"description": "Gone for good"}
    get["parameters"].append({"in": "query", "name": "deep", "schema": {"type": "boolean"}})
    get["parameters"][0]["description"] = "The thing's name."
    get["description"] = "A stale description"
    merged = reconcile(reviewed, generate())
    op = merged["paths"]["/api/things/{name}"]["get"]
    assert op["responses"]["410"] == {"description": "Gone for good"}
    assert [p["name"] for p in op["parameters"]] == ["name", "deep"]
    assert op["parameters"][0]["description"] == "The thing's name."
    assert op["description"] == "One thing by name."  # the docstring owns it


def test_reconcile_leaves_manual_operations_and_schemas_alone() -> None:
    reviewed = generate()
    manual_op = {MANUAL: True, "responses": {"200": {"description": "hand written"}}}
    reviewed["paths"]["/api/things"]["post"] = manual_op
    manual_schema = {MANUAL: True, "type": "object", "description": "by hand"}
    reviewed["components"]["schemas"]["Thing"] = manual_schema
    merged = reconcile(reviewed, generate())
    assert merged["paths"]["/api/things"]["post"] == manual_op
    assert merged["components"]["schemas"]["Thing"] == manual_schema


def test_reconcile_drops_removed_routes_and_unused_schemas() -> None:
    reviewed = generate()
    reviewed["paths"]["/api/gone"] = {"get": {"responses": {}}}
    reviewed["components"]["schemas"]["Unused"] = {"type": "object"}
    merged = reconcile(reviewed, generate())
    assert "/api/gone" not in merged["paths"]
    assert "Unused" not in merged["components"]["schemas"]
    assert "Thing" in merged["components"]["schemas"]


def test_write_is_deterministic_and_passes_the_check(tmp_path: Path) -> None:
    changed = write_contract("things", "Things.", [router], tmp_path, ["public/"])
    assert changed == [tmp_path / "openapi.yaml", tmp_path / "asyncapi.yaml"]
    first = (tmp_path / "openapi.yaml").read_text()
    assert first.startswith("# The HTTP contract of things")
    assert write_contract("things", "Things.", [router], tmp_path, ["public/"]) == []
    assert (tmp_path / "openapi.yaml").read_text() == first
    check_described("things", [router], Contract(tmp_path))


def test_write_gives_a_websocket_a_channel_and_keeps_its_messages(tmp_path: Path) -> None:
    write_contract("things", "Things.", [router], tmp_path)
    document = yaml.safe_load((tmp_path / "asyncapi.yaml").read_text())
    channel = document["channels"]["thing_feed"]
    assert channel["address"] == "/api/things/{name}/feed"
    assert channel["parameters"] == {"name": {"description": "The name."}}
    channel["messages"] = {"change": {"payload": {"type": "object"}}}
    document["channels"]["stale"] = {"address": "/api/gone"}
    (tmp_path / "asyncapi.yaml").write_text(yaml.safe_dump(document))
    write_contract("things", "Things.", [router], tmp_path)
    rewritten = yaml.safe_load((tmp_path / "asyncapi.yaml").read_text())
    assert rewritten["channels"]["thing_feed"]["messages"] == channel["messages"]
    assert "stale" not in rewritten["channels"]


def test_multiline_docstrings_are_written_as_blocks(tmp_path: Path) -> None:
    text = (Path(__file__).parents[2] / "src/junction/openapi.yaml").read_text()
    assert "description: |" in text
