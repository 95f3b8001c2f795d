"""Every /api/sessions endpoint refused: no or wrong credentials, bad bodies, unknown ids.

Each case asserts the exact status and body, and that nothing changed behind it.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from junction.testing import app_client

from .fakes import FakeKernels, fake_kernels_plugin

pytestmark = pytest.mark.anyio

SESSION_ID = "0b7c3f3e-8a64-4f7e-9d2b-5a1c6e0f9d11"
JSON = {"Content-Type": "application/json"}
ENDPOINTS = [
    ("GET", "/api/sessions"),
    ("POST", "/api/sessions"),
    ("GET", f"/api/sessions/{SESSION_ID}"),
    ("PATCH", f"/api/sessions/{SESSION_ID}"),
    ("DELETE", f"/api/sessions/{SESSION_ID}"),
]
DENIED = {"message": "Invalid or missing authentication token", "reason": "Forbidden"}


def _bad(message: str) -> dict[str, str]:
    return {"message": message, "reason": "Bad Request"}


@pytest.mark.parametrize(("method", "url"), ENDPOINTS)
@pytest.mark.parametrize(
    "headers",
    [{}, {"Authorization": "token not-the-token"}, {"Authorization": "bearer "}],
    ids=["no-credentials", "wrong-token", "empty-bearer"],
)
async def test_every_endpoint_refuses_requests_without_a_valid_token(
    method: str, url: str, headers: dict[str, str], kernels: FakeKernels, tmp_path: Path
) -> None:
    async with app_client(
        plugins=[fake_kernels_plugin(kernels)],
        enable=["sessions"],
        root_dir=tmp_path,
        authenticated=False,
    ) as client:
        body = b'{"path": "a.ipynb", "type": "notebook"}' if method in ("POST", "PATCH") else None
        response = await client.request(method, url, content=body, headers={**JSON, **headers})
    assert response.status_code == 403
    assert response.json() == DENIED
    assert kernels.starts == []


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (b"", "No JSON data provided"),
        (b"null", "No JSON data provided"),
        (
            b"{not json",
            "the body is not valid JSON: Expecting property name enclosed in double quotes",
        ),
        (b"[1, 2]", "Input should be a valid dictionary or object to extract fields from"),
        (b'"a.ipynb"', "Input should be a valid dictionary or object to extract fields from"),
        (b"{}", "path: Field required; type: Field required"),
        (b'{"type": "notebook"}', "path: Field required"),
        (b'{"path": "a.ipynb"}', "type: Field required"),
        (b'{"path": 5, "type": "notebook"}', "path: Input should be a valid string"),
        (b'{"path": "a.ipynb", "type": null}', "type: Input should be a valid string"),
        (
            b'{"path": "a.ipynb", "type": "notebook", "name": ["a"]}',
            "name: Input should be a valid string",
        ),
        (
            b'{"path": "a.ipynb", "type": "notebook", "kernel": "python3"}',
            "kernel: Input should be a valid dictionary or object to extract fields from",
        ),
        (
            b'{"path": "a.ipynb", "type": "notebook", "kernel": {"name": 3}}',
            "kernel.name: Input should be a valid string",
        ),
        (
            b'{"path": "a.ipynb", "type": "notebook", "kernel": {"id": false}}',
            "kernel.id: Input should be a valid string",
        ),
        (b'{"notebook": {"path": 1}}', "path: Input should be a valid string"),
    ],
)
async def test_create_refuses_bad_bodies_with_400(
    client: Any, kernels: FakeKernels, body: bytes, message: str
) -> None:
    response = await client.post("/api/sessions", content=body, headers=JSON)
    assert response.status_code == 400
    assert response.json() == _bad(message)
    assert kernels.starts == []
    assert (await client.get("/api/sessions")).json() == []


async def test_create_with_an_unknown_kernel_spec_answers_400_with_short_message(
    client: Any, kernels: FakeKernels
) -> None:
    response = await client.post(
        "/api/sessions", json={"path": "a.ipynb", "type": "notebook", "kernel": {"name": "nope"}}
    )
    assert response.status_code == 400
    assert response.json() == {
        "message": "Kernel 'nope' is not installed; pick another kernel or install it.",
        "reason": "nope not found",
        "short_message": "nope not found",
    }
    assert (await client.get("/api/sessions")).json() == []


async def test_create_whose_kernel_fails_to_start_answers_503(
    client: Any, kernels: FakeKernels
) -> None:
    kernels.fail_start = True
    response = await client.post("/api/sessions", json={"path": "a.ipynb", "type": "notebook"})
    assert response.status_code == 503
    assert response.json() == {
        "message": "the kernel process exited at once",
        "reason": "Service Unavailable",
    }
    assert (await client.get("/api/sessions")).json() == []


@pytest.mark.parametrize(
    ("method", "url"), [m for m in ENDPOINTS if m[1] != "/api/sessions"], ids=str
)
async def test_unknown_session_id_is_404(client: Any, method: str, url: str) -> None:
    body = b'{"path": "b.ipynb"}' if method == "PATCH" else None
    response = await client.request(method, url, content=body, headers=JSON)
    assert response.status_code == 404
    assert response.json() == {
        "message": f"Session not found: session_id='{SESSION_ID}'",
        "reason": "Not Found",
    }


@pytest.mark.parametrize(
    ("method", "url"), [("PUT", "/api/sessions"), ("DELETE", "/api/sessions")], ids=str
)
async def test_unsupported_methods_are_405(client: Any, method: str, url: str) -> None:
    response = await client.request(method, url)
    assert response.status_code == 405
    assert response.json() == {"message": "Method Not Allowed", "reason": "Method Not Allowed"}


@pytest.fixture
async def session(client: Any) -> dict[str, Any]:
    """A notebook session to patch."""
    response = await client.post(
        "/api/sessions", json={"path": "a.ipynb", "type": "notebook", "name": "a.ipynb"}
    )
    assert response.status_code == 201
    result: dict[str, Any] = response.json()
    return result


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (b"", "No JSON data provided"),
        (b"null", "No JSON data provided"),
        (b'{"path": "b.ipynb"', "the body is not valid JSON: Expecting ',' delimiter"),
        (b"[]", "Input should be a valid dictionary or object to extract fields from"),
        (b'{"path": 1}', "path: Input should be a valid string"),
        (b'{"name": {}}', "name: Input should be a valid string"),
        (b'{"type": 2.5}', "type: Input should be a valid string"),
        (
            b'{"kernel": "python3"}',
            "kernel: Input should be a valid dictionary or object to extract fields from",
        ),
        (b'{"kernel": {"id": 7}}', "kernel.id: Input should be a valid string"),
        (
            b'{"kernel": {"id": "6a0e2bd3-1f0e-4a57-b1a6-8f1e0f3d9c22"}}',
            "No such kernel: 6a0e2bd3-1f0e-4a57-b1a6-8f1e0f3d9c22",
        ),
    ],
)
async def test_patch_refuses_bad_bodies_with_400_and_changes_nothing(
    client: Any, kernels: FakeKernels, session: dict[str, Any], body: bytes, message: str
) -> None:
    url = f"/api/sessions/{session['id']}"
    response = await client.patch(url, content=body, headers=JSON)
    assert response.status_code == 400
    assert response.json() == _bad(message)
    assert (await client.get(url)).json() == session
    assert kernels.shutdowns == []


async def test_patch_to_an_unknown_kernel_spec_answers_400_and_keeps_the_kernel(
    client: Any, kernels: FakeKernels, session: dict[str, Any]
) -> None:
    url = f"/api/sessions/{session['id']}"
    response = await client.patch(url, json={"kernel": {"name": "nope"}})
    assert response.status_code == 400
    assert response.json() == {
        "message": "Kernel 'nope' is not installed; pick another kernel or install it.",
        "reason": "nope not found",
        "short_message": "nope not found",
    }
    assert (await client.get(url)).json() == session
    assert kernels.shutdowns == []


async def test_patch_whose_new_kernel_fails_to_start_answers_501(
    client: Any, kernels: FakeKernels, session: dict[str, Any]
) -> None:
    kernels.fail_start = True
    url = f"/api/sessions/{session['id']}"
    response = await client.patch(url, json={"kernel": {"name": "other"}})
    assert response.status_code == 501
    assert response.json() == {
        "message": "Kernel 'other' could not be started: the kernel process exited at once",
        "reason": "Error starting kernel other",
        "short_message": "Error starting kernel other",
    }
    assert (await client.get(url)).json() == session
    assert kernels.shutdowns == []
