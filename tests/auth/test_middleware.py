"""The request gate: credentials, token exchange, XSRF, Host checks, WebSocket origins."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import httpx
import pytest
from asgi_lifespan import LifespanManager
from fastapi import APIRouter
from pydantic import BaseModel

from junction import Plugin
from junction.app import create_app
from junction.auth.identity import User
from junction.auth.middleware import current_user, origin_allowed
from junction.auth.passwords import hash_password
from junction.errors import Forbidden
from junction.testing import TEST_TOKEN, make_settings

pytestmark = pytest.mark.anyio

_echo = APIRouter()


class _Greeting(BaseModel):
    name: str


@_echo.post("/api/echo")
async def _post_echo() -> dict[str, str]:
    return {"ok": "posted"}


@_echo.put("/api/echo")
async def _put_echo(greeting: _Greeting) -> dict[str, str]:
    return {"hello": greeting.name}


@_echo.get("/api/echo")
async def _get_echo() -> dict[str, str]:
    return {"ok": "read"}


ECHO = Plugin(name="echo", description="test routes", routers=[_echo])


@asynccontextmanager
async def client_for(**overrides: Any) -> AsyncIterator[httpx.AsyncClient]:
    app = create_app(make_settings(**overrides), plugins=[ECHO])
    async with LifespanManager(app) as manager:
        transport = httpx.ASGITransport(app=manager.app)
        async with httpx.AsyncClient(transport=transport, base_url="http://localhost:8888") as c:
            yield c


async def _login(client: httpx.AsyncClient) -> None:
    """Log in through the form, as a browser does; leaves the cookies in the client."""
    page = await client.get("/login")
    xsrf = page.cookies["_xsrf"]
    response = await client.post("/login", data={"password": TEST_TOKEN, "_xsrf": xsrf})
    assert response.status_code == 302


@pytest.mark.parametrize(
    "header", [f"token {TEST_TOKEN}", f"Token {TEST_TOKEN}", f"bearer {TEST_TOKEN}"]
)
async def test_authorization_header_authenticates(header: str) -> None:
    async with client_for() as client:
        response = await client.get("/api/echo", headers={"Authorization": header})
    assert response.status_code == 200
    assert response.json() == {"ok": "read"}


async def test_query_token_authenticates_api_calls() -> None:
    async with client_for() as client:
        response = await client.get("/api/echo", params={"token": TEST_TOKEN})
    assert response.status_code == 200


@pytest.mark.parametrize("headers", [{}, {"Authorization": "token wrong"}, {"Authorization": ""}])
async def test_api_without_valid_credentials_is_403_json(headers: dict[str, str]) -> None:
    async with client_for() as client:
        response = await client.get("/api/echo", headers=headers)
    assert response.status_code == 403
    assert response.json() == {
        "message": "Invalid or missing authentication token",
        "reason": "Forbidden",
    }


async def test_unauthenticated_status_can_be_401_for_gateway_clients() -> None:
    async with client_for(unauthenticated_status=401) as client:
        response = await client.get("/api/echo")
    assert response.status_code == 401
    assert response.json()["reason"] == "Unauthorized"


async def test_unauthenticated_page_redirects_to_login_with_next() -> None:
    async with client_for() as client:
        response = await client.get("/lab/tree/a b", headers={"Accept": "text/html"})
    assert response.status_code == 302
    assert response.headers["location"] == "/login?next=%2Flab%2Ftree%2Fa%2520b"


async def test_token_in_page_url_is_exchanged_for_a_cookie_and_removed() -> None:
    async with client_for() as client:
        response = await client.get(
            "/lab", params={"token": TEST_TOKEN, "reset": "1"}, headers={"Accept": "text/html"}
        )
        assert response.status_code == 302
        assert response.headers["location"] == "/lab?reset=1"
        cookies = response.headers.get_list("set-cookie")
        login = next(c for c in cookies if c.startswith("junction-auth-"))
        assert "HttpOnly" in login
        assert "SameSite=Lax" in login
        assert any(c.startswith("_xsrf=") for c in cookies)
        assert (await client.get("/api/echo")).status_code == 200


async def test_cookie_auth_requires_xsrf_header_on_unsafe_methods() -> None:
    async with client_for() as client:
        await _login(client)
        missing = await client.post("/api/echo")
        assert missing.status_code == 403
        assert missing.json() == {
            "message": "'_xsrf' argument missing from POST",
            "reason": "Forbidden",
        }
        wrong = await client.post("/api/echo", headers={"X-XSRFToken": "nope"})
        assert wrong.status_code == 403
        assert wrong.json()["message"] == "XSRF cookie does not match POST argument"
        right = await client.post("/api/echo", headers={"X-XSRFToken": client.cookies["_xsrf"]})
        assert right.status_code == 200


async def test_token_auth_needs_no_xsrf() -> None:
    async with client_for() as client:
        response = await client.post("/api/echo", headers={"Authorization": f"token {TEST_TOKEN}"})
    assert response.status_code == 200


async def test_xsrf_check_can_be_disabled() -> None:
    async with client_for(disable_check_xsrf=True) as client:
        await _login(client)
        assert (await client.post("/api/echo")).status_code == 200


async def test_forged_cookie_is_rejected() -> None:
    async with client_for() as client:
        await _login(client)
        name = next(n for n in client.cookies if n.startswith("junction-auth-"))
        client.cookies.set(name, client.cookies[name][:-2] + "xx")
        assert (await client.get("/api/echo")).status_code == 403


async def test_changing_the_token_invalidates_existing_cookies() -> None:
    async with client_for() as client:
        await _login(client)
        cookies = dict(client.cookies)
    async with client_for(token="a-new-token") as client:
        for name, value in cookies.items():
            client.cookies.set(name, value)
        assert (await client.get("/api/echo")).status_code == 403


async def test_foreign_host_header_is_refused_on_loopback() -> None:
    async with client_for() as client:
        response = await client.get(
            "/api/echo",
            headers={"Host": "evil.example:8888", "Authorization": f"token {TEST_TOKEN}"},
        )
    assert response.status_code == 403
    assert "Host header is not allowed" in response.json()["message"]


@pytest.mark.parametrize("host", ["localhost:8888", "127.0.0.1:8888", "[::1]:8888", "127.0.0.2"])
async def test_loopback_hosts_are_accepted(host: str) -> None:
    async with client_for() as client:
        response = await client.get(
            "/api/echo", headers={"Host": host, "Authorization": f"token {TEST_TOKEN}"}
        )
    assert response.status_code == 200


async def test_allow_remote_access_accepts_any_host() -> None:
    async with client_for(allow_remote_access=True) as client:
        response = await client.get(
            "/api/echo",
            headers={"Host": "notebook.example", "Authorization": f"token {TEST_TOKEN}"},
        )
    assert response.status_code == 200


async def test_no_auth_lets_everyone_in() -> None:
    async with client_for(no_auth=True, token=None) as client:
        assert (await client.get("/api/echo")).status_code == 200


async def test_password_logs_in_through_the_form() -> None:
    async with client_for(password=hash_password("correct horse")) as client:
        page = await client.get("/login")
        assert "password or token" in page.text
        xsrf = page.cookies["_xsrf"]
        bad = await client.post("/login", data={"password": "wrong", "_xsrf": xsrf})
        assert bad.status_code == 401
        assert "Invalid credentials." in bad.text
        good = await client.post(
            "/login", data={"password": "correct horse", "_xsrf": xsrf, "next": "/lab"}
        )
        assert good.status_code == 302
        assert good.headers["location"] == "/lab"
        assert (await client.get("/api/echo")).status_code == 200


async def test_login_form_without_xsrf_is_refused() -> None:
    async with client_for() as client:
        response = await client.post("/login", data={"password": TEST_TOKEN})
    assert response.status_code == 403
    assert not any(n.startswith("junction-auth-") for n in response.cookies)


@pytest.mark.parametrize(
    "next_url",
    ["https://evil.example/", "//evil.example/x", "/\\evil.example", "javascript:alert(1)"],
)
async def test_login_never_redirects_off_site(next_url: str) -> None:
    async with client_for() as client:
        page = await client.get("/login")
        response = await client.post(
            "/login",
            data={"password": TEST_TOKEN, "_xsrf": page.cookies["_xsrf"], "next": next_url},
        )
    assert response.status_code == 302
    assert response.headers["location"] == "/"


async def test_logout_clears_the_login_cookie() -> None:
    async with client_for() as client:
        await _login(client)
        response = await client.get("/logout")
        assert response.status_code == 200
        assert (await client.get("/api/echo")).status_code == 403


async def test_base_url_prefixes_everything() -> None:
    async with client_for(base_url="/user/ana/") as client:
        ok = await client.get(
            "/user/ana/api/echo", headers={"Authorization": f"token {TEST_TOKEN}"}
        )
        outside = await client.get("/api/echo", headers={"Authorization": f"token {TEST_TOKEN}"})
        login = await client.get("/user/ana/lab", headers={"Accept": "text/html"})
    assert ok.status_code == 200
    assert outside.status_code == 404
    assert login.headers["location"].startswith("/user/ana/login?next=")


async def test_security_headers_are_on_every_response() -> None:
    async with client_for() as client:
        response = await client.get("/api/echo", headers={"Authorization": f"token {TEST_TOKEN}"})
        page = await client.get("/login")
    assert response.headers["x-content-type-options"] == "nosniff"
    assert response.headers["referrer-policy"] == "same-origin"
    assert response.headers["content-security-policy"] == (
        "frame-ancestors 'self'; default-src 'none'"
    )
    assert page.headers["content-security-policy"] == "frame-ancestors 'self'"


async def test_cors_is_off_unless_configured() -> None:
    async with client_for() as client:
        response = await client.get(
            "/api/echo",
            headers={"Origin": "https://app.example", "Authorization": f"token {TEST_TOKEN}"},
        )
    assert "access-control-allow-origin" not in response.headers


async def test_cors_answers_preflight_when_configured() -> None:
    async with client_for(allow_origin="https://app.example") as client:
        response = await client.options(
            "/api/echo",
            headers={
                "Origin": "https://app.example",
                "Access-Control-Request-Method": "POST",
                "Access-Control-Request-Headers": "authorization",
            },
        )
    assert response.status_code == 200
    assert response.headers["access-control-allow-origin"] == "https://app.example"


def test_origin_rules() -> None:
    assert origin_allowed("http://localhost:8888", "localhost:8888", "", "")
    assert not origin_allowed("http://evil.example", "localhost:8888", "", "")
    assert origin_allowed("http://evil.example", "localhost:8888", "*", "")
    assert origin_allowed("https://a.example", "h", "", r"https://.*\.example")
    assert not origin_allowed("https://a.example.evil", "h", "", r"https://.*\.example")


@pytest.mark.parametrize("content_type", ["text/plain;charset=UTF-8", "application/json", None])
async def test_json_bodies_are_read_whatever_their_text_content_type(
    content_type: str | None,
) -> None:
    headers = {"Authorization": f"token {TEST_TOKEN}"}
    if content_type:
        headers["Content-Type"] = content_type
    async with client_for() as client:
        response = await client.put("/api/echo", content=b'{"name": "ana"}', headers=headers)
    assert response.status_code == 200
    assert response.json() == {"hello": "ana"}


async def test_malformed_json_body_is_a_400_naming_the_problem() -> None:
    headers = {"Authorization": f"token {TEST_TOKEN}", "Content-Type": "text/plain"}
    async with client_for() as client:
        response = await client.put("/api/echo", content=b'{"name": ', headers=headers)
    assert response.status_code == 400
    assert response.json()["reason"] == "Bad Request"
    assert response.json()["message"].startswith("the body is not valid JSON: ")


async def test_no_auth_still_refuses_cross_site_writes() -> None:
    async with client_for(no_auth=True, token=None) as client:
        foreign = await client.post("/api/echo", headers={"Origin": "http://evil.example"})
        assert foreign.status_code == 403
        assert foreign.json()["message"] == "Cross-origin request from http://evil.example"
        no_xsrf = await client.post("/api/echo")
        assert no_xsrf.status_code == 403
        page = await client.get("/login")
        xsrf = page.cookies["_xsrf"]
        ok = await client.post(
            "/api/echo", headers={"X-XSRFToken": xsrf, "Origin": "http://localhost:8888"}
        )
        assert ok.status_code == 200


async def test_planted_unsigned_xsrf_cookie_is_refused() -> None:
    async with client_for() as client:
        await _login(client)
        client.cookies.set("_xsrf", "attacker-chosen")
        response = await client.post("/api/echo", headers={"X-XSRFToken": "attacker-chosen"})
    assert response.status_code == 403
    assert response.json()["message"] == "XSRF cookie does not match POST argument"


async def test_xsrf_in_the_query_string_is_not_accepted() -> None:
    async with client_for() as client:
        await _login(client)
        response = await client.post("/api/echo", params={"_xsrf": client.cookies["_xsrf"]})
    assert response.status_code == 403


async def test_cookie_write_from_a_foreign_origin_is_refused_even_with_xsrf() -> None:
    async with client_for() as client:
        await _login(client)
        response = await client.post(
            "/api/echo",
            headers={"X-XSRFToken": client.cookies["_xsrf"], "Origin": "http://evil.localhost:1"},
        )
    assert response.status_code == 403


async def test_a_malformed_cookie_from_another_app_does_not_hide_ours() -> None:
    async with client_for() as client:
        await _login(client)
        name = next(n for n in client.cookies if n.startswith("junction-auth-"))
        header = f'a[b]=1; x="a; {name}={client.cookies[name]}'
        client.cookies.clear()
        response = await client.get("/api/echo", headers={"Cookie": header})
    assert response.status_code == 200


async def test_paths_outside_the_base_url_are_404_not_served() -> None:
    async with client_for(base_url="/jup/") as client:
        for path in ("/docs/oauth2-redirect", "/api/echo", "/login"):
            response = await client.get(path)
            assert response.status_code == 404, path


async def test_public_names_match_exactly() -> None:
    async with client_for() as client:
        assert (await client.get("/loginx")).status_code == 403
        assert (await client.get("/static/../api/echo")).status_code in (403, 404)


async def test_token_exchange_never_redirects_off_site() -> None:
    async with client_for() as client:
        url = httpx.URL("http://localhost:8888").copy_with(
            raw_path=f"//evil.example?token={TEST_TOKEN}".encode()
        )
        response = await client.get(url, headers={"Accept": "text/html"})
    assert response.status_code == 302
    assert response.headers["location"] == "/evil.example"


@pytest.mark.parametrize("host", ["[localhost]evil.example", "localhost:evil.example", "a b"])
async def test_malformed_host_headers_are_refused(host: str) -> None:
    async with client_for() as client:
        response = await client.get(
            "/api/echo", headers={"Host": host, "Authorization": f"token {TEST_TOKEN}"}
        )
    assert response.status_code == 403


def test_a_route_needing_a_user_refuses_a_request_the_gate_let_through() -> None:
    """The gate lets unauthenticated OPTIONS through (CORS preflights); a route that needs a
    user then answers the gate's 403, not a 500."""
    with pytest.raises(Forbidden, match="Invalid or missing authentication token"):
        current_user({"type": "http", "state": {}})
    with pytest.raises(Forbidden):
        current_user({"type": "http"})
    user = User(username="ana", name="ana", display_name="Ana")
    assert current_user({"type": "http", "state": {"user": user}}) is user
