"""One OpenAPI document out of the core's and the enabled plugins' documents."""

from __future__ import annotations

import copy
from collections.abc import Sequence
from typing import Any

from junction._version import __version__
from junction.spec.contract import Contract

__all__ = ["merge_documents"]

_REF = "#/components/schemas/"


def _rename_refs(node: Any, renames: dict[str, str]) -> Any:
    if isinstance(node, dict):
        ref = node.get("$ref")
        if isinstance(ref, str) and ref.startswith(_REF) and ref[len(_REF) :] in renames:
            node = {**node, "$ref": _REF + renames[ref[len(_REF) :]]}
        return {key: _rename_refs(value, renames) for key, value in node.items()}
    if isinstance(node, list):
        return [_rename_refs(value, renames) for value in node]
    return node


def merge_documents(contracts: Sequence[tuple[str, Contract]], base_url: str) -> dict[str, Any]:
    """The merged OpenAPI 3.1 document of ``contracts``, served under ``base_url``.

    Paths, tags and components are unions. Two plugins that define a schema of the same name
    differently keep both: the later one is renamed ``<plugin>.<Name>`` in its own references.
    """
    merged: dict[str, Any] = {
        "openapi": "3.1.0",
        "info": {
            "title": "Junction",
            "version": __version__,
            "description": "The HTTP API of this Junction server: the core and its enabled "
            "plugins (" + ", ".join(name for name, _ in contracts) + ").",
        },
        "servers": [{"url": base_url}],
        "paths": {},
        "tags": [],
        "components": {"schemas": {}, "securitySchemes": {}},
    }
    schemas: dict[str, Any] = merged["components"]["schemas"]
    for name, contract in contracts:
        document = copy.deepcopy(contract.openapi)
        if not document:
            continue
        own = (document.get("components") or {}).get("schemas") or {}
        renames = {
            key: f"{name}.{key}" for key, value in own.items() if schemas.get(key, value) != value
        }
        if renames:
            document = _rename_refs(document, renames)
            own = (document.get("components") or {}).get("schemas") or {}
            own = {renames.get(key, key): value for key, value in own.items()}
        schemas.update(own)
        merged["components"]["securitySchemes"].update(
            (document.get("components") or {}).get("securitySchemes") or {}
        )
        for path, item in (document.get("paths") or {}).items():
            merged["paths"].setdefault(path, {}).update(item)
        merged["tags"].extend(document.get("tags") or [])
    return merged
