"""Password hashing with argon2, as ``junction password`` stores it."""

from __future__ import annotations

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

__all__ = ["hash_password", "is_password_hash", "verify_password"]

_hasher = PasswordHasher()


def hash_password(password: str) -> str:
    """Return the argon2id hash of ``password``."""
    return _hasher.hash(password)


def is_password_hash(value: str) -> bool:
    """Whether ``value`` looks like an argon2 hash rather than a plain password."""
    return value.startswith("$argon2")


def verify_password(password_hash: str, candidate: str) -> bool:
    """Whether ``candidate`` matches ``password_hash``; False for a malformed hash."""
    try:
        return _hasher.verify(password_hash, candidate)
    except (VerificationError, InvalidHashError):
        return False
