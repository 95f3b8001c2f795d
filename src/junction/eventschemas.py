"""The schemas of the events the server itself emits, registered on every event bus.

Two come from the Jupyter server event protocol and keep its ``$id`` (clients written for
``jupyter_server`` read them unchanged): contents actions and kernel actions. The others are
Junction's, under ``https://events.junction.dev/``: sessions, terminals, apps, and logins.

Every event carries ``username`` (who acted, or whose object it is; None when nobody did,
as for an app that failed on its own) and ``timestamp`` (ISO 8601, UTC), which the bus adds
(see :mod:`junction.events`), so Junction's schemas require them and no schema may forbid
them. Every schema here lists all its fields and allows no others.
"""

from __future__ import annotations

from typing import Any

__all__ = [
    "APP_EVENTS",
    "AUTH_EVENTS",
    "CONTENTS_EVENTS",
    "CONTENTS_SCHEMA",
    "KERNEL_ACTIONS",
    "KERNEL_ACTIONS_SCHEMA",
    "SCHEMAS",
    "SESSION_EVENTS",
    "TERMINAL_EVENTS",
    "kernel_action",
]

CONTENTS_EVENTS = "https://events.jupyter.org/jupyter_server/contents_service/v1"
KERNEL_ACTIONS = "https://events.jupyter.org/jupyter_server/kernel_actions/v1"
SESSION_EVENTS = "https://events.junction.dev/sessions/v1"
TERMINAL_EVENTS = "https://events.junction.dev/terminals/v1"
APP_EVENTS = "https://events.junction.dev/apps/v1"
AUTH_EVENTS = "https://events.junction.dev/auth/v1"

_ENVELOPE: dict[str, Any] = {
    "username": {
        "type": ["string", "null"],
        "description": "Who acted (or owns the object); null when nobody did.",
    },
    "timestamp": {"type": "string", "description": "When, in ISO 8601 (UTC)."},
}

CONTENTS_SCHEMA: dict[str, Any] = {
    "$id": CONTENTS_EVENTS,
    "version": "1",
    "title": "Contents actions",
    "description": "A file or directory was created, saved, uploaded, renamed, copied or "
    "deleted through the contents service (reads are not recorded).",
    "type": "object",
    "required": ["action", "path"],
    "properties": {
        "action": {"enum": ["get", "create", "save", "upload", "rename", "copy", "delete"]},
        "path": {"type": "string", "description": "API path acted on (the target)."},
        "source_path": {"type": "string", "description": "Source of a rename or copy."},
        **_ENVELOPE,
    },
    "additionalProperties": False,
}

KERNEL_ACTIONS_SCHEMA: dict[str, Any] = {
    "$id": KERNEL_ACTIONS,
    "version": "1",
    "title": "Kernel actions",
    "description": "A kernel was started, interrupted, restarted or shut down.",
    "type": "object",
    "required": ["action", "msg"],
    "properties": {
        "action": {"enum": ["start", "interrupt", "shutdown", "restart"]},
        "kernel_id": {"type": "string"},
        "kernel_name": {"type": "string"},
        "status": {"enum": ["error", "success"]},
        "status_code": {"type": "number"},
        "msg": {"type": "string"},
        **_ENVELOPE,
    },
    "additionalProperties": False,
    "if": {"not": {"properties": {"status": {"const": "error"}, "action": {"const": "start"}}}},
    "then": {"required": ["kernel_id"]},
}


def _schema(
    schema_id: str, title: str, actions: list[str], properties: dict[str, Any], required: list[str]
) -> dict[str, Any]:
    return {
        "$id": schema_id,
        "version": "1",
        "title": title,
        "type": "object",
        "required": ["action", *required, "username", "timestamp"],
        "properties": {"action": {"enum": actions}, **properties, **_ENVELOPE},
        "additionalProperties": False,
    }


SESSIONS_SCHEMA = _schema(
    SESSION_EVENTS,
    "Sessions: a document's session was created or deleted",
    ["create", "delete"],
    {
        "session_id": {"type": "string"},
        "path": {"type": "string", "description": "The document's path (create only)."},
        "kernel_id": {"type": "string", "description": "Its kernel (create only)."},
    },
    ["session_id"],
)

TERMINALS_SCHEMA = _schema(
    TERMINAL_EVENTS,
    "Terminals: a terminal was created or deleted",
    ["create", "delete"],
    {"name": {"type": "string", "description": "The terminal's name."}},
    ["name"],
)

APPS_SCHEMA = _schema(
    APP_EVENTS,
    "Apps: an app was started, became ready, failed, or was stopped",
    ["start", "ready", "failed", "stop"],
    {
        "app_id": {"type": "string"},
        "name": {"type": "string", "description": "The app's display name."},
        "msg": {"type": "string", "description": "Why it failed."},
    },
    ["app_id"],
)

AUTH_SCHEMA = _schema(
    AUTH_EVENTS,
    "Logins: logins, logouts, failed logins, and API tokens made, revoked and used",
    ["login", "logout", "login_failed", "token_created", "token_revoked", "token_used"],
    {
        "token_id": {
            "type": "integer",
            "description": "The API token's id (never its secret); token_used is sent for the "
            "first use of a token in an hour.",
        },
    },
    [],
)

SCHEMAS: tuple[dict[str, Any], ...] = (
    CONTENTS_SCHEMA,
    KERNEL_ACTIONS_SCHEMA,
    SESSIONS_SCHEMA,
    TERMINALS_SCHEMA,
    APPS_SCHEMA,
    AUTH_SCHEMA,
)
"""Every schema above; the bus registers them when it is made."""

_KERNEL_VERBS = {
    "start": "started",
    "interrupt": "interrupted",
    "restart": "restarted",
    "shutdown": "shutdown",
}


def kernel_action(action: str, kernel_id: str, kernel_name: str | None = None) -> dict[str, Any]:
    """The data of a successful kernel action, worded as jupyter_server words it."""
    data: dict[str, Any] = {
        "action": action,
        "kernel_id": kernel_id,
        "status": "success",
        "msg": f"Kernel {kernel_id} was {_KERNEL_VERBS[action]}.",
    }
    if kernel_name is not None:
        data["kernel_name"] = kernel_name
    return data
