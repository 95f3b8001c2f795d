"""A cap on how many directory listings one user runs at once (multi-user mode).

Listings that judge links run on a limiter of their own (see
``LocalContents._run_judging``), shared by every user. Without a cap, one user's burst of
listings of a folder full of slow links could take every token of it and hold up the
listings of all the others; with it, a burst waits in its own queue.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import anyio

LISTINGS_PER_USER = 4
"""Directory listings one user may run at once; more wait for one of theirs to end."""


class PerUserSlots:
    """At most ``per_user`` holders at a time for each user name; None is not capped."""

    def __init__(self, per_user: int = LISTINGS_PER_USER) -> None:
        self.per_user = per_user
        self._limiters: dict[str, anyio.CapacityLimiter] = {}

    @asynccontextmanager
    async def hold(self, user: str | None) -> AsyncIterator[None]:
        """Hold one of ``user``'s slots (waiting for one if they are all taken)."""
        if user is None:
            yield
            return
        limiter = self._limiters.get(user)
        if limiter is None:
            limiter = self._limiters[user] = anyio.CapacityLimiter(self.per_user)
        try:
            async with limiter:
                yield
        finally:
            stats = limiter.statistics()
            if not stats.borrowed_tokens and not stats.tasks_waiting:
                self._limiters.pop(user, None)

    def busy(self, user: str) -> int:
        """How many of ``user``'s slots are held now."""
        limiter = self._limiters.get(user)
        return 0 if limiter is None else int(limiter.borrowed_tokens)
