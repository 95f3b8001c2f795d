"""The event bus behind ``/api/events``: the core's (:mod:`junction.events`), re-exported.

The bus used to live here; it is a core service now, so that every plugin can emit events
whether the lab plugin runs or not. The lab plugin serves its routes
(``server_routes.py``).
"""

from __future__ import annotations

from junction.events import MemoryEventBus
from junction.eventschemas import CONTENTS_SCHEMA, KERNEL_ACTIONS_SCHEMA

__all__ = ["CONTENTS_SCHEMA", "KERNEL_ACTIONS_SCHEMA", "MemoryEventBus"]
