"""Access tokens (EdDSA JWT), opaque refresh tokens, and the deny-list of logged-out access tokens.

Access-token claims are exactly what common/auth.py verifies: ``iss aud sub exp iat jti typ name dn roles
fac serves region`` (``name`` the username, ``dn`` the display name people read); the header carries the
``kid`` (RFC 7638 thumbprint) of the signing key.
"""

from __future__ import annotations

import hashlib
import secrets
import time
import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from uuid import UUID

import jwt
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from redis.asyncio import Redis
from redis.exceptions import RedisError

from common.auth import ALGORITHM
from common.errors import Unavailable
from gateway.identity.keys import key_id, load_private_key, public_jwk

REVOKED_PREFIX = "th:auth:revoked-jti:"


@dataclass(frozen=True)
class IssuedAccessToken:
    token: str
    jti: str
    expires_in: int
    expires_at: int


class TokenSigner:
    """Signs the gateway's access tokens with its Ed25519 private key."""

    def __init__(self, private_key: Ed25519PrivateKey, *, issuer: str, audience: str, ttl_seconds: int):
        self._key = private_key
        self.kid = key_id(private_key.public_key())
        self.issuer = issuer
        self.audience = audience
        self.ttl = ttl_seconds

    @classmethod
    def from_file(cls, path: Path, *, issuer: str, audience: str, ttl_seconds: int) -> TokenSigner:
        return cls(load_private_key(path), issuer=issuer, audience=audience, ttl_seconds=ttl_seconds)

    def jwks(self) -> dict[str, list[dict[str, str]]]:
        return {"keys": [public_jwk(self._key.public_key())]}

    def issue(
        self,
        *,
        user_id: UUID,
        username: str,
        display_name: str = "",
        roles: Iterable[str],
        facility_id: UUID,
        serves: Iterable[UUID],
        region_id: UUID | None,
        now: int | None = None,
    ) -> IssuedAccessToken:
        issued_at = int(time.time()) if now is None else now
        jti = uuid.uuid4().hex
        claims: dict[str, Any] = {
            "iss": self.issuer,
            "aud": self.audience,
            "sub": str(user_id),
            "iat": issued_at,
            "exp": issued_at + self.ttl,
            "jti": jti,
            "typ": "access",
            "name": username,
            "dn": display_name.strip() or username,
            "roles": sorted(roles),
            "fac": str(facility_id),
            "serves": sorted(str(f) for f in serves),
            "region": str(region_id) if region_id else None,
        }
        token = jwt.encode(claims, self._key, algorithm=ALGORITHM, headers={"kid": self.kid, "typ": "JWT"})
        return IssuedAccessToken(token, jti, self.ttl, issued_at + self.ttl)


def new_refresh_token() -> str:
    """An opaque refresh token: 256 random bits, URL-safe."""
    return secrets.token_urlsafe(32)


def refresh_token_hash(token: str) -> bytes:
    """What the database keeps of a refresh token (sha256; the token itself is never stored)."""
    return hashlib.sha256(token.encode()).digest()


async def deny_access_token(redis: Redis, jti: str, expires_at: int) -> None:
    """Deny the access token ``jti`` until it would have expired anyway."""
    ttl = int(expires_at - time.time()) + 5  # the verifier's leeway
    if ttl <= 0:
        return
    try:
        await redis.set(REVOKED_PREFIX + jti, b"1", ex=ttl)
    except RedisError as exc:
        raise Unavailable("the token deny-list is unavailable; retry shortly") from exc


async def is_access_token_denied(redis: Redis, jti: str | None) -> bool:
    """Whether the access token ``jti`` was logged out. Fails closed (503) when Redis is down."""
    if not jti:
        return False
    try:
        return bool(await redis.exists(REVOKED_PREFIX + jti))
    except RedisError as exc:
        raise Unavailable("the token deny-list is unavailable; retry shortly") from exc
