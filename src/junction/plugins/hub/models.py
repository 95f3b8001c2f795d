"""Values the hub plugins' services hand out."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

__all__ = ["HubLogin"]


@dataclass(frozen=True)
class HubLogin:
    """A finished Hub login: the user's OAuth token, the Hub's model of them (None when the
    Hub would not say), and where the browser goes next."""

    token: str
    model: dict[str, Any] | None
    next_url: str
