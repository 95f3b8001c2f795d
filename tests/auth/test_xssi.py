"""The XSSI rule of :mod:`junction.auth.xssi` on hand-made request scopes."""

from __future__ import annotations

from typing import Any

import pytest

from junction.auth.identity import Authenticator
from junction.auth.xssi import cross_site_read
from junction.testing import make_settings


def _auth(**overrides: Any) -> Authenticator:
    return Authenticator(make_settings(**overrides), cookie_secret=b"test-secret")


def _scope(
    method: str = "cookie", headers: dict[str, str] | None = None, query: str = ""
) -> dict[str, Any]:
    raw = [(k.lower().encode(), v.encode()) for k, v in (headers or {}).items()]
    raw.append((b"host", b"localhost:8888"))
    return {
        "type": "http",
        "method": "GET",
        "headers": raw,
        "query_string": query.encode(),
        "state": {"auth_method": method},
    }


def test_token_reads_pass_without_referer() -> None:
    assert cross_site_read(_scope("token"), _auth()) is None


@pytest.mark.parametrize("method", ["cookie", "none"])
def test_reads_without_referer_or_xsrf_are_refused(method: str) -> None:
    assert cross_site_read(_scope(method), _auth()) == "Blocking request from unknown origin"


def test_same_host_referer_passes_and_other_ports_do_not() -> None:
    auth = _auth()
    assert cross_site_read(_scope(headers={"Referer": "http://localhost:8888/lab"}), auth) is None
    refused = cross_site_read(_scope(headers={"Referer": "http://localhost:8889/lab"}), auth)
    assert refused == "Blocking Cross Origin request from http://localhost:8889/lab."


def test_matching_xsrf_passes_in_query_or_header_and_forged_does_not() -> None:
    auth = _auth()
    good = auth.new_xsrf()
    cookie = {"Cookie": f"_xsrf={good}"}
    assert cross_site_read(_scope(headers=cookie, query=f"_xsrf={good}"), auth) is None
    assert cross_site_read(_scope(headers={**cookie, "X-XSRFToken": good}), auth) is None
    other = auth.new_xsrf()
    assert cross_site_read(_scope(headers=cookie, query=f"_xsrf={other}"), auth) is not None
    planted = {"Cookie": "_xsrf=nonce.mac"}
    assert cross_site_read(_scope(headers=planted, query="_xsrf=nonce.mac"), auth) is not None


def test_configured_origins_admit_their_referers() -> None:
    referer = {"Referer": "https://notebooks.example.org/app"}
    exact = _auth(allow_origin="https://notebooks.example.org")
    assert cross_site_read(_scope(headers=referer), exact) is None
    pattern = _auth(allow_origin_pat=r"https://.*\.example\.org")
    assert cross_site_read(_scope(headers=referer), pattern) is None
    other = _auth(allow_origin="https://elsewhere.example.org")
    assert cross_site_read(_scope(headers=referer), other) is not None
    anyone = _auth(allow_origin="*")
    assert cross_site_read(_scope(), anyone) is None
