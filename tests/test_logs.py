"""Secrets never reach log lines."""

from __future__ import annotations

import logging

import pytest

from junction.logs import QuietSuccesses, SecretScrubber, scrub


@pytest.mark.parametrize(
    ("line", "expected"),
    [
        ("GET /api?token=abc123&x=1", "GET /api?token=[secret]&x=1"),
        ("GET /api?%74oken=abc123", "GET /api?%74oken=[secret]"),
        ('GET /api?token="abc123"', "GET /api?token=[secret]"),
        ("GET /lab?_xsrf=abc&TOKEN=zzz", "GET /lab?_xsrf=[secret]&TOKEN=[secret]"),
        ("Authorization: token 0123456789abcdef", "Authorization: token [secret]"),
        ("bearer abcdefgh12345678 rest", "bearer [secret] rest"),
        ("GET /api/contents?path=a&content=1", "GET /api/contents?path=a&content=1"),
    ],
)
def test_scrub_hides_secret_values(line: str, expected: str) -> None:
    assert scrub(line) == expected


def test_filter_scrubs_formatted_arguments() -> None:
    record = logging.LogRecord(
        "x", logging.INFO, __file__, 1, "%s - %s", ("GET /?token=s3", 200), None
    )
    assert SecretScrubber().filter(record)
    assert record.getMessage() == "GET /?token=[secret] - 200"


def _access(status: int) -> logging.LogRecord:
    return logging.LogRecord(
        "uvicorn.access",
        logging.INFO,
        __file__,
        1,
        '%s - "%s %s HTTP/%s" %d',
        ("127.0.0.1:5", "GET", "/api/status", "1.1", status),
        None,
    )


def test_successful_access_lines_are_debug_detail() -> None:
    quiet = QuietSuccesses(debug=False)
    assert not quiet.filter(_access(200))
    assert not quiet.filter(_access(302))
    assert quiet.filter(_access(404))
    assert quiet.filter(_access(500))
    assert QuietSuccesses(debug=True).filter(_access(200))
