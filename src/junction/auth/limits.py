"""Per-user limits: how many kernels and terminals one user may run at once.

The kernels and terminals routes ask :meth:`UserLimits.check` before starting one; a user at
the limit gets 403 with reason ``UserLimitReached`` (as a server-wide ``kernels.max_kernels``
does). Administrators are not limited.
"""

from __future__ import annotations

from collections.abc import Iterable

from junction.auth.identity import Authenticator, User
from junction.errors import Forbidden
from junction.plugin import ServiceKey

__all__ = ["LIMITS", "UserLimitReached", "UserLimits"]


class UserLimitReached(Forbidden):
    """The user runs as many objects of a kind as ``users.max_<kind>_per_user`` allows."""

    def __init__(self, resource: str, limit: int) -> None:
        super().__init__(
            f"You run {limit} {resource} already, the most one user may run at once "
            f"(users.max_{resource}_per_user); stop one first",
            reason="UserLimitReached",
        )


class UserLimits:
    """Counts a user's running objects (by the owners the core records) against limits."""

    def __init__(self, auth: Authenticator, *, kernels: int, terminals: int) -> None:
        self.auth = auth
        self.limits = {"kernels": kernels, "terminals": terminals}

    def check(self, resource: str, user: User, running: Iterable[str]) -> None:
        """Raise :class:`UserLimitReached` when ``user`` owns ``limit`` of the ``running``
        ids of ``resource`` already (0: no limit)."""
        limit = self.limits.get(resource, 0)
        if not limit or user.admin:
            return
        owners = self.auth.owners
        owned = sum(
            1 for object_id in running if owners.get((resource, object_id)) == user.username
        )
        if owned >= limit:
            raise UserLimitReached(resource, limit)


LIMITS: ServiceKey[UserLimits] = ServiceKey("users-limits")
"""Per-user limits in multi-user mode (provided by the ``users`` plugin)."""
