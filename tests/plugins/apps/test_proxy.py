"""What the proxy passes and drops, header by header (pure functions of ``proxy.py``)."""

from __future__ import annotations

import pytest

from junction.plugins.apps.proxy import filter_query, response_headers, upstream_headers
from junction.plugins.apps.supervisor import LogBuffer


def _upstream(raw: list[tuple[str, str]], **extra: object) -> dict[str, str]:
    headers = upstream_headers(
        [(k.encode(), v.encode()) for k, v in raw],
        junction_cookie=lambda name: name.startswith("junction-"),
        junction_token=lambda token: token == "secret",
        client_ip="10.1.2.3",
        scheme="https",
        prefix="/",
        user="ana",
        **extra,  # type: ignore[arg-type]
    )
    return dict(headers)


def test_junction_credentials_are_dropped_and_the_rest_kept() -> None:
    seen = _upstream(
        [
            ("Host", "a1.apps.example.org"),
            ("Cookie", 'junction-app=s; _streamlit_xsrf=2|x%3D|"y"; junction-auth-1=z'),
            ("Authorization", "Bearer secret"),
            ("X-Forwarded-User", "mallory"),
            ("X-Junction-User", "mallory"),
            ("Forwarded", "for=1.1.1.1"),
            ("Connection", "keep-alive"),
            ("Accept", "text/html"),
        ]
    )
    assert seen == {
        "host": "a1.apps.example.org",
        "cookie": '_streamlit_xsrf=2|x%3D|"y"',
        "accept": "text/html",
        "x-forwarded-for": "10.1.2.3",
        "x-forwarded-proto": "https",
        "x-forwarded-host": "a1.apps.example.org",
        "x-forwarded-prefix": "/",
        "x-forwarded-user": "ana",
    }


@pytest.mark.parametrize(
    ("value", "kept"),
    [
        ("token secret", False),
        ("bearer secret", False),
        ("Basic YW5hOnB3", True),
        ("token someone-elses", True),
    ],
)
def test_only_an_authorization_carrying_a_junction_token_is_dropped(value: str, kept: bool) -> None:
    assert ("authorization" in _upstream([("Authorization", value)])) is kept


def test_a_cookie_header_of_junction_cookies_only_is_dropped() -> None:
    assert "cookie" not in _upstream([("Cookie", "junction-app=s")])


def test_websocket_handshake_headers_are_left_to_the_client() -> None:
    seen = _upstream(
        [("Sec-WebSocket-Key", "k"), ("Sec-WebSocket-Protocol", "a"), ("Origin", "http://x")],
        websocket=True,
    )
    assert not {"sec-websocket-key", "sec-websocket-protocol", "origin"} & set(seen)


def test_the_token_parameter_is_dropped_from_queries() -> None:
    assert filter_query(b"a=1&token=secret&b=%20&tokens=2") == "a=1&b=%20&tokens=2"
    assert filter_query(b"a=1") == "a=1"


def test_app_cookies_named_like_junctions_are_dropped() -> None:
    kept = response_headers(
        [
            (b"Set-Cookie", b"junction-app=x; Path=/"),
            (b"Set-Cookie", b"app=1"),
            (b"Transfer-Encoding", b"chunked"),
            (b"Content-Type", b"text/plain"),
        ],
        junction_cookie=lambda name: name.startswith("junction-"),
    )
    assert kept == [(b"set-cookie", b"app=1"), (b"content-type", b"text/plain")]


def test_a_content_length_beside_transfer_encoding_is_dropped() -> None:
    kept = response_headers(
        [(b"Content-Length", b"5"), (b"Transfer-Encoding", b"chunked"), (b"X-A", b"1")],
        junction_cookie=lambda name: False,
    )
    assert kept == [(b"x-a", b"1")]
    plain = response_headers([(b"Content-Length", b"5")], junction_cookie=lambda name: False)
    assert plain == [(b"content-length", b"5")]


def test_the_log_buffer_keeps_the_last_bytes() -> None:
    logs = LogBuffer(10)
    logs.append(b"0123456789")
    logs.append(b"abc\n")
    assert logs.text() == "456789abc\n"
    assert logs.total == 14
    assert logs.since(12) == b"c\n"
    assert logs.since(0) == b"456789abc\n"
    assert logs.tail(1) == ["456789abc"]


@pytest.mark.parametrize(
    "value", ["token\tsecret", "Bearer  secret", "TOKEN secret ", "Basic secret", "secret"]
)
def test_a_junction_token_is_dropped_whatever_the_spacing_or_scheme(value: str) -> None:
    assert "authorization" not in _upstream([("Authorization", value)])


def test_token_parameters_are_dropped_once_decoded() -> None:
    query = b"a=1&%74oken=secret&TOKEN=secret&To%6Ben=x&+token=y&b=2"
    assert filter_query(query) == "a=1&b=2"


@pytest.mark.parametrize(
    "name", ["X-Forwarded_User", "Remote_User", "X_Forwarded_For", "X-FORWARDED-USER", "My_Header"]
)
def test_underscored_and_identity_headers_from_the_client_are_dropped(name: str) -> None:
    seen = _upstream([(name, "admin")])
    assert "admin" not in {v for k, v in seen.items() if k != "x-forwarded-user"}
    assert seen["x-forwarded-user"] == "ana"
    assert not [k for k in seen if "_" in k]


def test_cookies_for_another_domain_are_dropped_on_app_hosts() -> None:
    raw = [
        (b"Set-Cookie", b"a=1; Domain=localhost; Path=/"),
        (b"Set-Cookie", b"b=1; path=/; domain=.apps.localhost"),
        (b"Set-Cookie", b"c=1; Domain=A1.apps.localhost"),
        (b"Set-Cookie", b"d=1; Path=/"),
    ]
    kept = response_headers(raw, junction_cookie=lambda n: False, cookie_host="a1.apps.localhost")
    assert [v for _, v in kept] == [b"c=1; Domain=A1.apps.localhost", b"d=1; Path=/"]
    everything = response_headers(raw, junction_cookie=lambda n: False)
    assert len(everything) == 4
