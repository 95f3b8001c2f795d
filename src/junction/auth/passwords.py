"""Password hashing with argon2, as ``junction password`` stores it.

argon2 is imported with the first hash or check: a server without passwords never loads it.
"""

from __future__ import annotations

from functools import cache
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from argon2 import PasswordHasher

__all__ = ["hash_password", "is_password_hash", "verify_password"]


@cache
def _hasher() -> PasswordHasher:
    from argon2 import PasswordHasher

    return PasswordHasher()


def hash_password(password: str) -> str:
    """Return the argon2id hash of ``password``."""
    return _hasher().hash(password)


def is_password_hash(value: str) -> bool:
    """Whether ``value`` looks like an argon2 hash rather than a plain password."""
    return value.startswith("$argon2")


def verify_password(password_hash: str, candidate: str) -> bool:
    """Whether ``candidate`` matches ``password_hash``; False for a malformed hash."""
    from argon2.exceptions import InvalidHashError, VerificationError

    try:
        return _hasher().verify(password_hash, candidate)
    except (VerificationError, InvalidHashError):
        return False
