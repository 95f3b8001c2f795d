"""The API contract: every route a plugin serves is described in files it ships.

A plugin ships ``openapi.yaml`` (OpenAPI 3.1, its HTTP routes) and, when it serves
WebSockets, ``asyncapi.yaml`` (AsyncAPI 3.0), next to the module its entry point names.
The core's own routes are described in ``junction/openapi.yaml``.

Map of the package:

- ``contract.py``: :class:`Contract`, one plugin's spec files read lazily, and the check
  the registry runs before anything starts (:func:`check_described`).
- ``generate.py``: builds a plugin's OpenAPI document from its routers and reconciles it
  with the reviewed file on disk (``python -m junction.spec write PLUGIN``).
- ``merge.py``: merges the enabled plugins' documents into one, for ``/api/spec.yaml``.
- ``routes.py``: the ``GET /api/spec.yaml`` route.
- ``__main__.py``: the ``python -m junction.spec`` command.
"""

from __future__ import annotations

from junction.spec.contract import Contract, check_described, route_keys

__all__ = ["Contract", "check_described", "route_keys"]
