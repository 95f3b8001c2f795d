"""The hub plugin's service: the Hub as identity provider, for the plugin's own routes."""

from __future__ import annotations

from typing import TYPE_CHECKING

from junction.plugin import ServiceKey

if TYPE_CHECKING:
    from junction.plugins.hub.identity import HubIdentity

__all__ = ["HUB_IDENTITY"]

HUB_IDENTITY: ServiceKey[HubIdentity] = ServiceKey("hub")
"""The :class:`~junction.plugins.hub.identity.HubIdentity` of this server."""
