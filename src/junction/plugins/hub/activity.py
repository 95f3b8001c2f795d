"""Reporting activity to the Hub, so its idle culler knows the server is in use.

Every ``hub.activity_interval`` seconds (±10 %), when the core's ``ServerState`` saw activity
(requests, kernel or terminal output, open connections) since the last report, POST it to
``hub.activity_url``. Failures are logged and retried with doubling delays, capped at the
interval; they never stop the server.
"""

from __future__ import annotations

import logging
import random
from datetime import UTC, datetime

import anyio
import httpx

from junction.plugins.hub.hubapi import HubAPI
from junction.services import ServerState, utcnow

__all__ = ["current_activity", "run_activity_reports"]

log = logging.getLogger("junction.hub")


def current_activity(state: ServerState) -> datetime:
    """The server's last activity; now, while connections (kernels, terminals) stay open."""
    if state.gauge("connections") > 0:
        return utcnow()
    return state.last_activity


async def run_activity_reports(api: HubAPI, state: ServerState, interval: float) -> None:
    """Report activity until cancelled (see the module docstring)."""
    sent: datetime = datetime.min.replace(tzinfo=UTC)
    failures = 0
    while True:
        if failures:
            await anyio.sleep(min(interval, 2.0**failures))
        else:
            await anyio.sleep(interval * (1 + 0.2 * (random.random() - 0.5)))  # noqa: S311
        moment = current_activity(state)
        if moment <= sent:
            continue
        try:
            await api.report_activity(moment)
        except (httpx.HTTPError, OSError) as exc:
            failures += 1
            level = logging.WARNING if failures < 3 else logging.ERROR
            log.log(level, "could not report activity to the Hub (try %d): %s", failures, exc)
            continue
        if failures:
            log.info("reported activity to the Hub after %d failed tries", failures)
        failures = 0
        sent = moment
