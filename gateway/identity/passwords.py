"""Password hashing (argon2id) and the password policy.

Hashing is deliberately slow, so it runs in a worker thread and never blocks the event loop. A failed
lookup still verifies against a dummy hash, so an unknown username costs as much time as a wrong password.
"""

from __future__ import annotations

import asyncio
import string
from functools import lru_cache

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

_HASHER = PasswordHasher()  # argon2id, RFC 9106 low-memory profile

MIN_LENGTH = 8
MAX_LENGTH = 128


@lru_cache(maxsize=1)
def _dummy_hash() -> str:
    return _HASHER.hash("not-a-password-of-anyone")


def _verify(stored: str | None, password: str) -> bool:
    try:
        return _HASHER.verify(stored or _dummy_hash(), password) and stored is not None
    except (VerifyMismatchError, VerificationError, InvalidHashError):
        return False


async def verify_password(stored: str | None, password: str) -> bool:
    """True when ``password`` matches ``stored``; with ``stored=None`` spends the same time and says False."""
    return await asyncio.to_thread(_verify, stored, password)


async def hash_password(password: str) -> str:
    return await asyncio.to_thread(_HASHER.hash, password)


def needs_rehash(stored: str) -> bool:
    try:
        return _HASHER.check_needs_rehash(stored)
    except InvalidHashError:
        return True


def password_problem(password: str, username: str = "") -> str | None:
    """Why ``password`` breaks the policy (8-128 characters, three of four character classes, not the
    username), or None when it is acceptable."""
    if len(password) < MIN_LENGTH:
        return f"the password must have at least {MIN_LENGTH} characters"
    if len(password) > MAX_LENGTH:
        return f"the password must have at most {MAX_LENGTH} characters"
    classes = sum(
        (
            any(c in string.ascii_lowercase for c in password),
            any(c in string.ascii_uppercase for c in password),
            any(c.isdigit() for c in password),
            any(not c.isalnum() for c in password),
        )
    )
    if classes < 3:
        return "the password must mix at least three of: lower case, upper case, digits, symbols"
    if username and username.lower() in password.lower():
        return "the password must not contain the username"
    return None
