"""Who may reach which path: re-exported from :mod:`junction.plugins.contents.service`,
where the hook lives (other plugins import it from there)."""

from __future__ import annotations

from junction.plugins.contents.service import (
    CONTENTS_ACCESS,
    ContentsAccess,
    Reach,
    check_path,
    home_of,
    visible_entries,
)

__all__ = [
    "CONTENTS_ACCESS",
    "ContentsAccess",
    "Reach",
    "check_path",
    "home_of",
    "visible_entries",
]
