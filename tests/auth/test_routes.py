"""``/api/me`` and the login page."""

from __future__ import annotations

import json

import pytest

from junction.auth.routes import safe_next
from junction.testing import app_client

pytestmark = pytest.mark.anyio


async def test_me_reports_identity_and_requested_permissions() -> None:
    wanted = {"contents": ["read", "write"], "kernels": ["execute", "fly"]}
    async with app_client() as client:
        response = await client.get("/api/me", params={"permissions": json.dumps(wanted)})
    assert response.status_code == 200
    body = response.json()
    assert set(body["identity"]) == {
        "username",
        "name",
        "display_name",
        "initials",
        "avatar_url",
        "color",
    }
    assert body["permissions"] == {"contents": ["read", "write"], "kernels": ["execute"]}


@pytest.mark.parametrize("bad", ["{not json", "[1, 2]", '{"a": "read"}', '{"a": [1]}'])
async def test_me_rejects_malformed_permissions(bad: str) -> None:
    async with app_client() as client:
        response = await client.get("/api/me", params={"permissions": bad})
    assert response.status_code == 400
    assert response.json() == {
        "message": "permissions should be a JSON dict of {resource: [actions]}",
        "reason": "Bad Request",
    }


async def test_me_requires_authentication() -> None:
    async with app_client(authenticated=False) as client:
        response = await client.get("/api/me")
    assert response.status_code == 403


async def test_login_page_renders_a_form_with_an_xsrf_field() -> None:
    async with app_client(authenticated=False) as client:
        response = await client.get("/login", params={"next": "/lab/tree/x.ipynb"})
    assert response.status_code == 200
    assert 'name="_xsrf"' in response.text
    assert 'value="/lab/tree/x.ipynb"' in response.text
    assert response.cookies["_xsrf"]


@pytest.mark.parametrize(
    ("candidate", "expected"),
    [
        ("/lab", "/lab"),
        ("/lab?x=1", "/lab?x=1"),
        (None, "/"),
        ("http://evil.example/lab", "/"),
        ("//evil.example", "/"),
        ("\\\\evil.example", "/"),
        ("/other/base", "/base/"),
    ],
)
def test_safe_next(candidate: str | None, expected: str) -> None:
    base = "/base/" if expected == "/base/" else "/"
    assert safe_next(candidate, base) == expected
