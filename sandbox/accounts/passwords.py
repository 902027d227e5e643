"""Password hashing with Argon2id (argon2-cffi), never a home-made scheme.

Production uses argon2-cffi's recommended parameters. The test environment
uses the library's lowest-cost profile so that suites creating many accounts
stay fast; it is the same algorithm and code path.
"""

from __future__ import annotations

from functools import lru_cache

from argon2 import PasswordHasher, profiles
from argon2.exceptions import InvalidHashError, VerificationError

from sandbox.settings import get_settings


@lru_cache
def _hasher() -> PasswordHasher:
    if get_settings().environment == "test":
        return PasswordHasher.from_parameters(profiles.CHEAPEST)
    return PasswordHasher()


def hash_password(password: str) -> str:
    return _hasher().hash(password)


def verify_password(password_hash: str, password: str) -> bool:
    try:
        return _hasher().verify(password_hash, password)
    except (VerificationError, InvalidHashError):
        return False
