"""Reading JSON request bodies whatever their Content-Type says.

JupyterLab sends its JSON bodies as ``fetch(url, {body: JSON.stringify(...)})``, which makes
the browser label them ``text/plain;charset=UTF-8``; FastAPI parses only ``application/json``
bodies. These dependencies parse the bytes as JSON regardless. That is safe here: a
cookie-authenticated PUT/POST/PATCH must also carry the ``X-XSRFToken`` header (checked by
the core before any route runs), which a cross-site form or ``text/plain`` fetch cannot set.
"""

from __future__ import annotations

import json
from typing import Any, TypeVar

from fastapi import Depends, Request
from pydantic import BaseModel, ValidationError

from junction.errors import BadRequest

__all__ = ["json_body", "json_object"]

M = TypeVar("M", bound=BaseModel)


async def _load(request: Request) -> Any:
    raw = await request.body()
    if not raw.strip():
        raise BadRequest("a JSON body is required")
    try:
        return json.loads(raw)
    except ValueError as exc:
        raise BadRequest(f"the body is not valid JSON: {exc}") from None


def json_body(model: type[M]) -> Any:
    """A dependency: the body parsed as JSON and validated as ``model`` (400 otherwise)."""

    async def dependency(request: Request) -> M:
        data = await _load(request)
        try:
            return model.model_validate(data)
        except ValidationError as exc:
            problems = "; ".join(
                f"{'.'.join(str(p) for p in err['loc']) or 'body'}: {err['msg']}"
                for err in exc.errors()
            )
            raise BadRequest(f"invalid body: {problems}") from None

    return Depends(dependency)


async def _object(request: Request) -> dict[str, Any]:
    data = await _load(request)
    if not isinstance(data, dict):
        raise BadRequest("the body must be a JSON object")
    return data


def json_object() -> Any:
    """A dependency: the body as a JSON object (400 for anything else)."""
    return Depends(_object)
