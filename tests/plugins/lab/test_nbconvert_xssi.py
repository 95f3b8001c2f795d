"""``/nbconvert/{format}/{path}`` applies the cross-site read rule of ``/files``."""

from __future__ import annotations

import json
from pathlib import Path

import httpx
import pytest

from junction.testing import TEST_TOKEN

from .conftest import Serve
from .test_nbconvert import code_cell, notebook

pytestmark = pytest.mark.anyio

URL = "/nbconvert/script/evil.ipynb"


@pytest.fixture
def secret(root_dir: Path) -> str:
    """A notebook whose exported code is the secret a script tag would steal."""
    (root_dir / "evil.ipynb").write_text(json.dumps(notebook(code_cell("secret = 42"))))
    return "secret = 42"


async def _log_in(client: httpx.AsyncClient) -> None:
    exchanged = await client.get("/", params={"token": TEST_TOKEN}, headers={"Accept": "text/html"})
    assert exchanged.status_code == 302
    assert "_xsrf" in client.cookies


@pytest.mark.parametrize(
    "headers",
    [
        {},
        {"Referer": "http://evil.example/", "Sec-Fetch-Site": "cross-site"},
        {"Referer": "http://localhost:9999/lab"},
        {"X-XSRFToken": "forged.value"},
    ],
)
async def test_cookie_exports_from_other_sites_are_refused(
    serve: Serve, secret: str, headers: dict[str, str]
) -> None:
    async with serve(enable=["contents"], authenticated=False) as browser:
        await _log_in(browser)
        response = await browser.get(URL, headers={"Sec-Fetch-Dest": "script", **headers})
        assert response.status_code == 403
        assert response.json()["reason"] == "Forbidden"
        assert secret not in response.text


async def test_cookie_exports_from_our_pages_and_token_exports_are_served(
    serve: Serve, secret: str
) -> None:
    async with serve(enable=["contents"], authenticated=False) as browser:
        await _log_in(browser)
        ours = await browser.get(URL, headers={"Referer": "http://localhost:8888/lab/tree/x"})
        assert ours.status_code == 200
        assert secret in ours.text
        link = await browser.get(URL, params={"_xsrf": browser.cookies["_xsrf"], "download": "1"})
        assert link.status_code == 200
        assert secret in link.text
    async with serve(enable=["contents"]) as client:
        anywhere = await client.get(URL, headers={"Referer": "http://evil.example/"})
        assert anywhere.status_code == 200
        assert secret in anywhere.text
