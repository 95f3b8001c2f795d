"""Secrets handed to people and browsers, and how they are kept: only their hashes.

API tokens and session ids are 256-bit random values. High-entropy secrets need no slow hash:
a SHA-256 digest cannot be reversed, so the database holds only digests and a stolen copy
lets nobody log in. Passwords, chosen by people, are hashed with argon2
(:mod:`junction.auth.passwords`).

Token format: ``jct_`` followed by 43 URL-safe characters. The prefix lets secret scanners
and people recognise a Junction token; the first characters after it are kept in clear as a
hint (``jct_Ab12…``) so a user can tell their tokens apart.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets

__all__ = [
    "TOKEN_PREFIX",
    "digest",
    "hint",
    "looks_like_token",
    "new_session_id",
    "new_token",
    "same_digest",
]

TOKEN_PREFIX = "jct_"  # noqa: S105 - a marker, not a secret
_TOKEN_LENGTH = len(TOKEN_PREFIX) + 43
_HINT_LENGTH = len(TOKEN_PREFIX) + 4


def new_token() -> str:
    """A new API token (shown to its owner once, never stored)."""
    return TOKEN_PREFIX + secrets.token_urlsafe(32)


def new_session_id() -> str:
    """A new browser session id, the value of the session cookie."""
    return secrets.token_urlsafe(32)


def looks_like_token(value: str) -> bool:
    """Whether ``value`` has the shape of an API token (cheap filter before any lookup)."""
    return value.startswith(TOKEN_PREFIX) and len(value) == _TOKEN_LENGTH


def digest(secret: str) -> str:
    """The SHA-256 hex digest stored in place of a token or session id."""
    return hashlib.sha256(secret.encode()).hexdigest()


def same_digest(a: str, b: str) -> bool:
    """Compare two digests in constant time."""
    return hmac.compare_digest(a.encode(), b.encode())


def hint(token: str) -> str:
    """The recognisable beginning of a token, safe to show in lists."""
    return token[:_HINT_LENGTH] + "…"
