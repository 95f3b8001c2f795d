"""The apps service contract: its Protocol, key and errors.

The implementation is :class:`~junction.plugins.apps.manager.SupervisedApps`.
"""

from __future__ import annotations

from typing import Protocol

from junction.auth.identity import User
from junction.errors import NotFound
from junction.plugin import ServiceKey
from junction.plugins.apps.models import App, AppCreate, Sharing

__all__ = ["APPS", "AppNotFound", "AppService"]


class AppNotFound(NotFound):
    """No app has this id, or the user may not see it."""

    def __init__(self, app_id: str) -> None:
        super().__init__(f"App not found: {app_id}")
        self.app_id = app_id


class AppService(Protocol):
    """Defines, supervises and shares apps. Provided by the apps plugin as :data:`APPS`."""

    async def create(self, body: AppCreate, owner: User) -> App:
        """Define an app owned by ``owner`` and start it. Raises
        :class:`~junction.errors.BadRequest` for an unknown framework, a missing file or a
        path outside the root."""
        ...

    async def list(self, user: User) -> list[App]:
        """Every app ``user`` may open."""
        ...

    async def get(self, app_id: str, user: User, *, manage: bool = False) -> App:
        """One app; raises :class:`AppNotFound` when ``user`` may not open it, and
        :class:`~junction.errors.Forbidden` with ``manage`` when they may open but not
        manage it."""
        ...

    async def start(self, app_id: str, user: User) -> App:
        """Start a stopped or failed app (management right needed)."""
        ...

    async def stop(self, app_id: str, user: User) -> App:
        """Stop an app's process group (management right needed)."""
        ...

    async def restart(self, app_id: str, user: User) -> App:
        """Stop, then start an app (management right needed)."""
        ...

    async def delete(self, app_id: str, user: User) -> None:
        """Stop an app and forget it (management right needed)."""
        ...

    async def share(self, app_id: str, sharing: Sharing, user: User) -> App:
        """Replace who may open the app (management right needed)."""
        ...


APPS: ServiceKey[AppService] = ServiceKey("apps")
