"""The startup URLs of :mod:`junction.server`."""

from __future__ import annotations

from pathlib import Path

from junction.server import TOKEN_MASK, server_urls
from junction.settings import ServerSettings


def _settings(ip: str = "localhost") -> ServerSettings:
    return ServerSettings(ip=ip, root_dir=Path.cwd())


def test_server_urls_print_a_generated_token() -> None:
    urls = server_urls(_settings(), 8888, "/lab", "abc123", generated=True)
    assert urls == [
        "http://localhost:8888/lab?token=abc123",
        "http://127.0.0.1:8888/lab?token=abc123",
    ]


def test_server_urls_mask_a_token_the_operator_gave() -> None:
    urls = server_urls(_settings(), 8888, "/lab", "operator-secret", generated=False)
    assert urls == [
        f"http://localhost:8888/lab?token={TOKEN_MASK}",
        f"http://127.0.0.1:8888/lab?token={TOKEN_MASK}",
    ]
    assert not any("operator-secret" in url for url in urls)


def test_server_urls_without_a_token_have_no_query() -> None:
    assert server_urls(_settings("10.0.0.5"), 80, "/", "", generated=False) == [
        "http://10.0.0.5:80/"
    ]
