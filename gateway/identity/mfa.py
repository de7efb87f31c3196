"""The second factor: TOTP (RFC 6238) secrets, sealed at rest with AES-256-GCM.

A secret is shown once, as an ``otpauth://`` URI, when it is enrolled; afterwards only its ciphertext
exists. The ciphertext is bound to the user's id (associated data), so it cannot be copied onto another
account. The key comes from ``IDENTITY_TOTP_KEY`` or, by default, ``<keys_dir>/totp.key``.

A code is good for one sign-in (RFC 6238 §5.2): the sign-in records the time step it matched
(``gateway.users.totp_last_step``) and a later sign-in needs a code of a later step.
"""

from __future__ import annotations

import base64
import binascii
import hmac
import os
import time
from functools import lru_cache
from pathlib import Path
from uuid import UUID

import pyotp
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from common.config import platform_settings
from gateway.identity.keys import ensure_secret
from gateway.identity.settings import identity_settings

TOTP_KEY_FILE = "totp.key"
_VERSION = b"\x01"
_NONCE_BYTES = 12
VALID_WINDOW = 1  # one 30-second step either side: clocks of phones drift


class SecretUnreadable(Exception):
    """The stored TOTP secret cannot be decrypted (wrong key or tampered row)."""


class TotpSeal:
    """Encrypts and decrypts TOTP secrets with one AES-256-GCM key."""

    def __init__(self, key: bytes):
        if len(key) != 32:
            raise ValueError("the TOTP key must be 32 bytes")
        self._aead = AESGCM(key)

    def seal(self, user_id: UUID, secret: str) -> bytes:
        nonce = os.urandom(_NONCE_BYTES)
        return _VERSION + nonce + self._aead.encrypt(nonce, secret.encode(), user_id.bytes)

    def open(self, user_id: UUID, sealed: bytes) -> str:
        blob = bytes(sealed)
        if not blob.startswith(_VERSION) or len(blob) <= 1 + _NONCE_BYTES:
            raise SecretUnreadable("unknown TOTP ciphertext format")
        nonce, body = blob[1 : 1 + _NONCE_BYTES], blob[1 + _NONCE_BYTES :]
        try:
            return self._aead.decrypt(nonce, body, user_id.bytes).decode()
        except InvalidTag as exc:
            raise SecretUnreadable("TOTP secret does not decrypt with this key") from exc


@lru_cache(maxsize=4)
def _seal_for(configured: str, keys_dir: Path) -> TotpSeal:
    if configured:
        try:
            key = base64.urlsafe_b64decode(configured + "=" * (-len(configured) % 4))
        except (binascii.Error, ValueError) as exc:
            raise ValueError("IDENTITY_TOTP_KEY is not base64url") from exc
        return TotpSeal(key)
    return TotpSeal(ensure_secret(keys_dir, TOTP_KEY_FILE))


def totp_seal() -> TotpSeal:
    """The seal for the current settings (cached per key source)."""
    return _seal_for(identity_settings().totp_key, platform_settings().keys_dir)


def new_secret() -> str:
    """A fresh 160-bit base32 secret."""
    return pyotp.random_base32(32)


def provisioning_uri(secret: str, username: str) -> str:
    """The ``otpauth://totp/...`` URI an authenticator app scans."""
    return pyotp.TOTP(secret).provisioning_uri(name=username, issuer_name=identity_settings().totp_issuer)


def matched_step(secret: str, code: str, *, for_time: float | None = None) -> int | None:
    """The time step (Unix time // 30 s) whose TOTP of ``secret`` is ``code``, within ±1 step of now;
    None when it matches none. Should two steps of the window share the code (one chance in ~10^6),
    the latest one is answered, so a replay check against it stays on the safe side."""
    code = code.strip().replace(" ", "")
    if not (code.isdigit() and len(code) == 6):
        return None
    totp = pyotp.TOTP(secret)
    now = totp.timecode(time.time() if for_time is None else for_time)
    found = None
    for step in range(now - VALID_WINDOW, now + VALID_WINDOW + 1):
        if hmac.compare_digest(code, totp.generate_otp(step)):  # every step compared: no early exit
            found = step
    return found


def code_is_valid(secret: str, code: str) -> bool:
    """Whether ``code`` is the current TOTP of ``secret`` (±1 step). Says nothing about replay: a
    sign-in uses :func:`matched_step` and records the step (gateway/identity/service.py)."""
    return matched_step(secret, code) is not None
