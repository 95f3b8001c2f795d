"""Links re-pointed at a chosen moment: right after the users plugin judged a path, so a
race between a route's check and what it then opens happens every time, not by luck."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from junction.auth.identity import User
from junction.plugins.contents.service import Reach
from junction.plugins.users.homes import Homes


def point(link: Path, target: str) -> None:
    """Make ``link`` a link to ``target`` in one step (``rename`` over the old one)."""
    fresh = link.with_name(link.name + "~new")
    fresh.symlink_to(target)
    os.replace(fresh, link)


@dataclass
class Swaps:
    """Re-points links right after the users plugin checked a given path."""

    pending: dict[str, tuple[Path, str]] = field(default_factory=dict)

    def after_check(self, path: str, link: Path, target: str) -> None:
        """Once ``path`` has been checked, make ``link`` lead to ``target``."""
        self.pending[path] = (link, target)

    def install(self, homes: Homes, monkeypatch: pytest.MonkeyPatch) -> None:
        """Wrap ``homes.check`` (the ``CONTENTS_ACCESS`` provider) to make the swaps."""
        original = homes.check

        async def check(user: User, path: str, action: str, *, entry: bool = False) -> Reach:
            reach = await original(user, path, action, entry=entry)
            swap = self.pending.pop(path, None)
            if swap is not None:
                point(*swap)
            return reach

        monkeypatch.setattr(homes, "check", check)
