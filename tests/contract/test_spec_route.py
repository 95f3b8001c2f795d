"""``GET /api/spec.yaml``: the merged spec of the core and the enabled plugins."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from junction.testing import app_client

pytestmark = pytest.mark.anyio


async def test_spec_yaml_serves_the_core_and_enabled_plugins_only(tmp_path: Path) -> None:
    async with app_client(root_dir=tmp_path, enable=["contents"]) as client:
        response = await client.get("/api/spec.yaml")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/x-yaml")
    document = yaml.safe_load(response.text)
    assert document["openapi"] == "3.1.0"
    assert "/api/contents/{path}" in document["paths"]
    assert "/api/status" in document["paths"]
    assert "/api/spec.yaml" in document["paths"]
    assert "/api/kernels" not in document["paths"]
    assert {tag["name"] for tag in document["tags"]} == {"core", "contents"}
    assert document["servers"] == [{"url": "/"}]


async def test_spec_yaml_names_the_base_url(tmp_path: Path) -> None:
    async with app_client(root_dir=tmp_path, base_url="/jupyter/") as client:
        response = await client.get("/jupyter/api/spec.yaml")
    assert response.status_code == 200
    assert yaml.safe_load(response.text)["servers"] == [{"url": "/jupyter/"}]


async def test_spec_yaml_needs_a_login(tmp_path: Path) -> None:
    async with app_client(root_dir=tmp_path, authenticated=False) as client:
        response = await client.get("/api/spec.yaml")
    assert response.status_code == 403
    assert response.json()["reason"] == "Forbidden"


async def test_spec_yaml_keeps_same_named_schemas_of_two_plugins_apart() -> None:
    from junction.spec.contract import Contract
    from junction.spec.merge import merge_documents

    class Fixed(Contract):
        def __init__(self, document: dict[str, object]) -> None:
            super().__init__(Path("."))
            self.__dict__["openapi"] = document

    def doc(description: str) -> dict[str, object]:
        ref = {"$ref": "#/components/schemas/Model"}
        return {
            "paths": {f"/{description}": {"get": {"responses": {"200": {"content": ref}}}}},
            "components": {"schemas": {"Model": {"description": description}}},
        }

    merged = merge_documents([("one", Fixed(doc("one"))), ("two", Fixed(doc("two")))], "/")
    schemas = merged["components"]["schemas"]
    assert schemas["Model"] == {"description": "one"}
    assert schemas["two.Model"] == {"description": "two"}
    two = merged["paths"]["/two"]["get"]["responses"]["200"]["content"]
    assert two == {"$ref": "#/components/schemas/two.Model"}
