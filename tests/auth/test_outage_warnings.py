"""While credentials cannot be checked (the identity provider's database is down), every
request still gets its 503, but the log gets one warning a minute, not one per request.

In process: the real auth middleware in front of a small ASGI app, with an authenticator
whose checks fail as they do when the database is down.
"""

from __future__ import annotations

import logging

import httpx
import pytest
from starlette.types import Receive, Scope, Send

from junction.auth import middleware as middleware_module
from junction.auth.identity import Authenticator, AuthMethod, User
from junction.auth.middleware import AuthMiddleware
from junction.errors import DatabaseUnavailable
from junction.logs import WarningThrottle
from junction.services import ServerState
from junction.testing import TEST_TOKEN, make_settings

pytestmark = pytest.mark.anyio

REQUESTS = 20


class DownAuthenticator(Authenticator):
    """An authenticator whose every check fails as it does while the database is down."""

    async def identify(
        self,
        *,
        query_token: str | None,
        header: str | None,
        cookie: str | None,
        touch: bool = True,
    ) -> tuple[User | None, AuthMethod | None]:
        """Always :class:`DatabaseUnavailable`."""
        raise DatabaseUnavailable("the database is down")


async def unreachable(scope: Scope, receive: Receive, send: Send) -> None:
    """The application behind the gate, which no request may reach."""
    raise AssertionError("a request passed the gate")


def warnings(caplog: pytest.LogCaptureFixture) -> list[str]:
    """The warnings logged by ``junction.auth``."""
    return [
        r.getMessage()
        for r in caplog.records
        if r.name == "junction.auth" and r.levelno == logging.WARNING
    ]


async def test_an_outage_logs_one_warning_however_many_requests_fail(
    caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(
        middleware_module, "_OUTAGE_WARNINGS", WarningThrottle(logging.getLogger("junction.auth"))
    )
    settings = make_settings(token=TEST_TOKEN)
    auth = DownAuthenticator(settings, cookie_secret=b"s" * 32)
    gate = AuthMiddleware(unreachable, auth=auth, state=ServerState(settings))
    caplog.set_level(logging.WARNING, logger="junction.auth")
    transport = httpx.ASGITransport(app=gate)
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
        answers = [
            await client.get("/api/me", headers={"Authorization": f"token t{i}"})
            for i in range(REQUESTS)
        ]
    assert {a.status_code for a in answers} == {503}
    assert {a.json()["reason"] for a in answers} == {"DatabaseUnavailable"}
    assert warnings(caplog) == ["cannot check the credentials of a request: the database is down"]


def test_a_throttled_warning_comes_back_after_its_interval_with_a_count(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.WARNING, logger="junction.auth")
    throttle = WarningThrottle(logging.getLogger("junction.auth"), interval=60.0)
    for n in range(4):
        throttle.warning("down: %s", n)
    assert warnings(caplog) == ["down: 0"]
    throttle._last = (throttle._last or 0.0) - 60.0  # as if the interval had passed
    throttle.warning("down: %s", "again")
    throttle.warning("down: %s", "dropped")
    assert warnings(caplog) == [
        "down: 0",
        "down: again (3 more like it left out since the last one)",
    ]
