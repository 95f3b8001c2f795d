"""Build a plugin's spec files from its routers, keeping what reviewers added by hand.

FastAPI's schema generator gives the paths, parameters, request bodies and models. On top of
it this module makes the document Junction's: every route (also those hidden from FastAPI's
own ``/api/openapi.json``), one tag (the plugin's name), stable operation ids
(``plugin.route_name``), validation errors as 400 with the Jupyter error body, 403 for routes
behind the login, ``text/html`` for pages and nothing made up for raw responses.

Writing over an existing file reconciles the two (:func:`reconcile`): the generator owns
what it produces, keys it does not produce (an extra response code, an example, a better
media type) are kept, and an operation or schema marked ``x-junction-manual: true`` is
left alone entirely. Routes that no longer exist disappear with their operations.
"""

from __future__ import annotations

import copy
import inspect
import re
import typing
import warnings
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

from fastapi import APIRouter
from fastapi.openapi.utils import get_openapi
from fastapi.responses import HTMLResponse, RedirectResponse
from fastapi.routing import APIRoute, APIWebSocketRoute

from junction._version import __version__
from junction.spec.contract import ASYNCAPI_FILE, HTTP_METHODS, OPENAPI_FILE, load_yaml

__all__ = [
    "ERROR_SCHEMA",
    "MANUAL",
    "asyncapi_document",
    "dump",
    "openapi_document",
    "reconcile",
    "write_contract",
]

MANUAL = "x-junction-manual"
"""Mark an operation or a schema with ``x-junction-manual: true`` to keep the generator off it."""

ERROR_SCHEMA: dict[str, Any] = {
    "description": "The Jupyter error body.",
    "properties": {
        "message": {"description": "What went wrong, for people.", "type": "string"},
        "reason": {
            "description": "A short reason phrase, or null.",
            "type": ["string", "null"],
        },
        "traceback": {"description": "Present (empty) for unexpected errors.", "type": "string"},
    },
    "required": ["message", "reason"],
    "type": "object",
}
_ERROR_REF = {"$ref": "#/components/schemas/Error"}
_ERROR_CONTENT = {"application/json": {"schema": _ERROR_REF}}
_UNKNOWN_JSON: dict[str, Any] = {"application/json": {"schema": {}}}

SECURITY_SCHEMES: dict[str, Any] = {
    "token": {
        "description": "`Authorization: token <token>` (or `bearer <token>`).",
        "in": "header",
        "name": "Authorization",
        "type": "apiKey",
    },
    "token_query": {
        "description": "`?token=<token>`; pages trade it for the login cookie.",
        "in": "query",
        "name": "token",
        "type": "apiKey",
    },
    "cookie": {
        "description": "The login cookie set by `POST /login`; unsafe methods also need the "
        "`_xsrf` cookie echoed in the `X-XSRFToken` header.",
        "in": "cookie",
        "name": "username-<host>-<port>",
        "type": "apiKey",
    },
}
_SECURITY: list[dict[str, list[str]]] = [{"token": []}, {"token_query": []}, {"cookie": []}]
_FORBIDDEN = "Not authenticated, or not allowed"


def _public(path: str, public_paths: Sequence[str]) -> bool:
    local = path.lstrip("/")
    return any(local.startswith(prefix) for prefix in public_paths if prefix)


def _return_type(route: APIRoute) -> Any:
    try:
        return typing.get_type_hints(route.endpoint).get("return")
    except Exception:  # a hint that does not resolve: say nothing rather than guess
        return None


def _operation_ids(name: str, routes: Sequence[APIRoute]) -> dict[tuple[str, str], str]:
    ids: dict[tuple[str, str], str] = {}
    taken: set[str] = set()
    for route in routes:
        methods = sorted(route.methods or ())
        for method in methods:
            base = f"{name}.{route.name}" + (f"_{method.lower()}" if len(methods) > 1 else "")
            candidate, n = base, 2
            while candidate in taken:
                candidate, n = f"{base}_{n}", n + 1
            taken.add(candidate)
            ids[(method.lower(), route.path_format)] = candidate
    return ids


def _fix_operation(
    operation: dict[str, Any], route: APIRoute, name: str, op_id: str, public: bool
) -> None:
    operation["tags"] = [name]
    operation["operationId"] = op_id
    operation.setdefault("description", inspect.cleandoc(route.endpoint.__doc__ or route.name))
    responses: dict[str, Any] = operation.setdefault("responses", {})
    if "422" in responses:
        del responses["422"]
        responses.setdefault("400", {"description": "Invalid parameters or body"})
    if "{" in route.path_format:
        responses.setdefault("404", {"description": "What the path names does not exist"})
    if not public:
        responses.setdefault("403", {"description": _FORBIDDEN})
        operation["security"] = copy.deepcopy(_SECURITY)
    else:
        operation["security"] = []
    returned = _return_type(route)
    for code, response in responses.items():
        if code.startswith(("4", "5")):
            response.setdefault("content", copy.deepcopy(_ERROR_CONTENT))
            continue
        if isinstance(returned, type) and issubclass(returned, HTMLResponse):
            response["content"] = {"text/html": {"schema": {"type": "string"}}}
        elif response.get("content") == _UNKNOWN_JSON:
            # A route returning a raw Response: FastAPI cannot know the body; say nothing.
            del response["content"]
    if isinstance(returned, type) and issubclass(returned, RedirectResponse):
        for code in [code for code in responses if code.startswith("2")]:
            del responses[code]
        responses["302"] = {
            "description": "Redirect",
            "headers": {"Location": {"schema": {"type": "string"}}},
        }


def openapi_document(
    name: str, description: str, routers: Iterable[APIRouter], public_paths: Sequence[str] = ()
) -> dict[str, Any]:
    """The OpenAPI 3.1 document the generator makes for one plugin's routers."""
    routes: list[APIRoute] = []
    for router in routers:
        for route in router.routes:
            if isinstance(route, APIRoute):
                shown = copy.copy(route)
                shown.include_in_schema = True
                routes.append(shown)
    with warnings.catch_warnings():
        # FastAPI warns about the duplicate ids of multi-method routes; ours replace them.
        warnings.filterwarnings("ignore", "Duplicate Operation ID", UserWarning)
        document = get_openapi(
            title=f"Junction {name}",
            version=__version__,
            openapi_version="3.1.0",
            description=description,
            routes=routes,
            tags=[{"name": name, "description": description}],
        )
    ids = _operation_ids(name, routes)
    by_key = {(m.lower(), r.path_format): r for r in routes for m in (r.methods or ())}
    for path, item in document.get("paths", {}).items():
        for method, operation in item.items():
            route = by_key[(method, path)]
            public = _public(path, public_paths)
            _fix_operation(operation, route, name, ids[(method, path)], public)
    components: dict[str, Any] = document.setdefault("components", {})
    schemas: dict[str, Any] = components.setdefault("schemas", {})
    schemas.pop("HTTPValidationError", None)
    schemas.pop("ValidationError", None)
    schemas["Error"] = copy.deepcopy(ERROR_SCHEMA)
    components["securitySchemes"] = copy.deepcopy(SECURITY_SCHEMES)
    return document


_GENERATED_WINS = frozenset({"description", "summary", "operationId", "tags", "security"})
"""Operation keys the code owns: improve the docstring, not the file."""


def _keep(existing: Any, generated: Any) -> Any:
    """The reviewed value wins; keys only the generated one has are added."""
    if isinstance(existing, dict) and isinstance(generated, dict):
        merged = dict(existing)
        for key, value in generated.items():
            merged[key] = _keep(existing[key], value) if key in existing else value
        return merged
    return existing


def _merge_parameters(existing: list[Any], generated: list[Any]) -> list[Any]:
    def key(param: Any) -> tuple[Any, Any]:
        return (param.get("name"), param.get("in")) if isinstance(param, dict) else (None, None)

    # Parameters the code reads itself (from the raw request) are described by hand: keep them.
    old = {key(param): param for param in existing}
    merged = [_keep(old[key(p)], p) if key(p) in old else p for p in generated]
    fresh = {key(p) for p in generated}
    return merged + [p for p in existing if key(p) not in fresh]


def _merge_operation(existing: Any, generated: dict[str, Any]) -> Any:
    if not isinstance(existing, dict):
        return generated
    if existing.get(MANUAL):
        return existing
    merged = dict(existing)
    for key, value in generated.items():
        if key in _GENERATED_WINS or key not in existing:
            merged[key] = value
        elif key == "parameters":
            merged[key] = _merge_parameters(existing[key] or [], value)
        else:
            merged[key] = _keep(existing[key], value)
    return merged


def _refs(node: Any) -> Iterable[str]:
    if isinstance(node, dict):
        ref = node.get("$ref")
        if isinstance(ref, str) and ref.startswith("#/components/schemas/"):
            yield ref.rsplit("/", 1)[1]
        for value in node.values():
            yield from _refs(value)
    elif isinstance(node, list):
        for value in node:
            yield from _refs(value)


def reconcile(existing: dict[str, Any], generated: dict[str, Any]) -> dict[str, Any]:
    """Merge a freshly generated document into the reviewed one on disk.

    Only the generated operations survive (a removed route loses its operation). Within an
    operation the code owns ``summary``, ``description`` (the docstring), ``operationId``,
    ``tags`` and ``security``; everywhere else the reviewed values win and what the
    generator adds (a new response, a new property) joins them. Component schemas come from
    the models (improve a model's ``Field`` descriptions, not the file). An operation or a
    schema marked ``x-junction-manual: true`` is kept exactly as reviewed. Schemas nothing
    refers to any more are dropped.
    """
    result: dict[str, Any] = {**existing, **{k: v for k, v in generated.items() if k != "paths"}}
    old_schemas = (existing.get("components") or {}).get("schemas") or {}
    schemas = dict(old_schemas)
    for name, schema in generated.get("components", {}).get("schemas", {}).items():
        if not (old_schemas.get(name) or {}).get(MANUAL):
            schemas[name] = schema
    result["components"] = {**(existing.get("components") or {}), **generated["components"]}
    result["components"]["schemas"] = schemas
    old_paths = existing.get("paths") or {}
    paths: dict[str, Any] = {}
    for path, item in generated.get("paths", {}).items():
        old_item = old_paths.get(path) or {}
        merged_item = {k: v for k, v in old_item.items() if k not in HTTP_METHODS}
        for method, operation in item.items():
            merged_item[method] = _merge_operation(old_item.get(method), operation)
        paths[path] = merged_item
    result["paths"] = paths
    kept = {"Error"}
    frontier = set(_refs(paths))
    while frontier - kept:
        new = frontier - kept
        kept |= new
        frontier = {ref for name in new if name in schemas for ref in _refs(schemas[name])}
    for stale in set(schemas) - kept:
        del schemas[stale]
    return result


def asyncapi_document(
    name: str, routers: Iterable[APIRouter], existing: dict[str, Any]
) -> dict[str, Any] | None:
    """The AsyncAPI 3.0 document for one plugin's WebSockets, or None when it has none.

    Channels already described are kept as they are; a WebSocket route with no channel gets
    a skeleton (address, parameters, description from the docstring) to complete by hand;
    channels whose address no route serves are dropped with their operations.
    """
    sockets = [
        route
        for router in routers
        for route in router.routes
        if isinstance(route, APIWebSocketRoute)
    ]
    if not sockets:
        return None
    document = copy.deepcopy(existing) or {}
    document["asyncapi"] = "3.0.0"
    info = document.setdefault("info", {})
    info.setdefault("title", f"Junction {name} WebSockets")
    info["version"] = __version__
    channels: dict[str, Any] = document.setdefault("channels", {})
    addresses = {route.path_format for route in sockets}
    for key in [k for k, c in channels.items() if (c or {}).get("address") not in addresses]:
        del channels[key]
    operations: dict[str, Any] = document.get("operations") or {}
    for key in list(operations):
        ref = ((operations[key] or {}).get("channel") or {}).get("$ref", "")
        if ref.rsplit("/", 1)[-1] not in channels:
            del operations[key]
    described = {c.get("address") for c in channels.values() if c}
    for route in sockets:
        if route.path_format in described:
            continue
        channel: dict[str, Any] = {
            "address": route.path_format,
            "description": inspect.cleandoc(route.endpoint.__doc__ or route.name),
        }
        params = re.findall(r"\{(\w+)\}", route.path_format)
        if params:
            channel["parameters"] = {p: {"description": f"The {p}."} for p in params}
        channels[route.name] = channel
    return document


def dump(document: dict[str, Any], header: str) -> str:
    """YAML text for a spec file: sorted keys, block style, a comment header."""
    import yaml

    base: Any = getattr(yaml, "CSafeDumper", yaml.SafeDumper)

    class Dumper(base):  # type: ignore[misc]  # a base chosen at run time
        """Multi-line strings as ``|`` blocks, so descriptions read as written."""

    def text(dumper: Any, value: str) -> Any:
        style = "|" if "\n" in value and not value.endswith((" ", "\t")) else None
        return dumper.represent_scalar("tag:yaml.org,2002:str", value, style=style)

    Dumper.add_representer(str, text)
    body: str = yaml.dump(
        document,
        Dumper=Dumper,
        sort_keys=True,
        default_flow_style=False,
        allow_unicode=True,
        width=100,
    )
    comment = "".join(f"# {line}\n".replace("# \n", "#\n") for line in header.splitlines())
    return comment + body


def _header(name: str, kind: str) -> str:
    return (
        f"The {kind} contract of {name}, reviewed like code (see docs/spec.md).\n"
        f"Regenerate with `python -m junction.spec write {name}`: the generator owns what it\n"
        "produces; what you add is kept; `x-junction-manual: true` keeps it off an operation."
    )


def write_contract(
    name: str,
    description: str,
    routers: Sequence[APIRouter],
    directory: Path,
    public_paths: Sequence[str] = (),
) -> list[Path]:
    """(Re)write ``openapi.yaml`` and ``asyncapi.yaml`` in ``directory``; return changed files."""
    changed = []
    openapi_path = directory / OPENAPI_FILE
    has_http = any(isinstance(r, APIRoute) for router in routers for r in router.routes)
    if has_http or openapi_path.exists():
        existing = load_yaml(openapi_path) if openapi_path.exists() else {}
        generated = openapi_document(name, description, routers, public_paths)
        text = dump(reconcile(existing or {}, generated), _header(name, "HTTP"))
        if not openapi_path.exists() or openapi_path.read_text() != text:
            openapi_path.write_text(text)
            changed.append(openapi_path)
    asyncapi_path = directory / ASYNCAPI_FILE
    old = load_yaml(asyncapi_path) if asyncapi_path.exists() else {}
    sockets = asyncapi_document(name, routers, old or {})
    if sockets is not None:
        text = dump(sockets, _header(name, "WebSocket"))
        if not asyncapi_path.exists() or asyncapi_path.read_text() != text:
            asyncapi_path.write_text(text)
            changed.append(asyncapi_path)
    return changed
