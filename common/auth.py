"""Auth primitives: the ``Principal`` and verification of the gateway's access tokens.

The gateway signs access tokens with an Ed25519 key (``EdDSA``); services verify them with the public key
alone. Claims: ``sub`` user id, ``name`` username, ``dn`` display name (what people read, e.g. the signer of
a report), ``roles``, ``fac`` facility id, ``serves`` ids of the facilities whose clinical work this facility
reads (the standing 医共体 relationship), ``region`` region id.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from enum import StrEnum
from pathlib import Path
from typing import Any
from uuid import UUID

import jwt
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from cryptography.hazmat.primitives.serialization import load_pem_public_key
from fastapi import Request
from pydantic import BaseModel, ConfigDict, model_validator

from common.errors import Forbidden, Unauthorized, Unavailable

ALGORITHM = "EdDSA"


class Role(StrEnum):
    TOWNSHIP_DOCTOR = "township_doctor"
    TECHNICIAN = "technician"
    SPECIALIST = "specialist"
    PUBLIC_HEALTH = "public_health"
    FACILITY_ADMIN = "facility_admin"
    BUREAU_ANALYST = "bureau_analyst"
    PLATFORM_ADMIN = "platform_admin"


# Roles that may see individual patients' records. A bureau analyst sees aggregates only.
CLINICAL_ROLES = frozenset(
    {Role.TOWNSHIP_DOCTOR, Role.TECHNICIAN, Role.SPECIALIST, Role.PUBLIC_HEALTH}
)


class Principal(BaseModel):
    """Who is calling: a user at a facility with roles (or the platform itself for background work)."""

    model_config = ConfigDict(frozen=True)

    user_id: UUID
    username: str
    roles: frozenset[str]
    facility_id: UUID
    serves: frozenset[UUID] = frozenset()
    region_id: UUID | None = None
    token_id: str | None = None
    system: bool = False
    # The person's name as shown and printed (张医生); the username when none is known.
    display_name: str = ""

    @model_validator(mode="before")
    @classmethod
    def _display_name_defaults_to_username(cls, data: Any) -> Any:
        if isinstance(data, dict) and not str(data.get("display_name") or "").strip():
            data = {**data, "display_name": data.get("username", "")}
        return data

    def has_role(self, *roles: str) -> bool:
        return bool(self.roles.intersection(roles))

    @property
    def is_clinical(self) -> bool:
        return bool(self.roles.intersection(CLINICAL_ROLES))

    @property
    def visible_facility_ids(self) -> frozenset[UUID]:
        """Facilities whose clinical rows this principal may see by standing policy."""
        return frozenset({self.facility_id}) | self.serves

    @property
    def primary_role(self) -> str:
        return sorted(self.roles)[0] if self.roles else ""


SYSTEM_USER = UUID(int=0)


def system_principal(facility_id: UUID = SYSTEM_USER) -> Principal:
    """The platform acting for itself (Celery tasks, sweepers)."""
    return Principal(
        user_id=SYSTEM_USER, username="system", roles=frozenset(), facility_id=facility_id, system=True
    )


def load_public_keys(path: Path) -> list[Ed25519PublicKey]:
    """Read one or more PEM public keys (concatenated, to allow rotation) from ``path``."""
    text = path.read_text()
    keys: list[Ed25519PublicKey] = []
    marker = "-----END PUBLIC KEY-----"
    for chunk in text.split(marker):
        if "BEGIN PUBLIC KEY" in chunk:
            key = load_pem_public_key((chunk.strip() + "\n" + marker + "\n").encode())
            if not isinstance(key, Ed25519PublicKey):
                raise ValueError(f"{path}: only Ed25519 public keys are accepted")
            keys.append(key)
    if not keys:
        raise ValueError(f"{path}: no public key found")
    return keys


class TokenVerifier:
    """Verifies access tokens: signature (EdDSA only), expiry, issuer, audience and type."""

    def __init__(self, public_keys: Iterable[Ed25519PublicKey], *, issuer: str, audience: str, leeway: int = 5):
        self._keys = list(public_keys)
        self._issuer = issuer
        self._audience = audience
        self._leeway = leeway

    def claims(self, token: str) -> dict[str, Any]:
        try:
            header = jwt.get_unverified_header(token)
        except jwt.PyJWTError as exc:
            raise Unauthorized("malformed access token") from exc
        if header.get("alg") != ALGORITHM:
            raise Unauthorized("access token algorithm not accepted")
        last: Exception | None = None
        for key in self._keys:
            try:
                claims: dict[str, Any] = jwt.decode(
                    token,
                    key,
                    algorithms=[ALGORITHM],
                    audience=self._audience,
                    issuer=self._issuer,
                    leeway=self._leeway,
                    options={"require": ["exp", "iat", "sub", "aud", "iss"]},
                )
            except jwt.ExpiredSignatureError as exc:
                raise Unauthorized("access token expired") from exc
            except jwt.InvalidAudienceError as exc:
                raise Unauthorized("access token is for another audience") from exc
            except jwt.InvalidIssuerError as exc:
                raise Unauthorized("access token from an unknown issuer") from exc
            except jwt.InvalidSignatureError as exc:
                last = exc
                continue
            except jwt.PyJWTError as exc:
                raise Unauthorized(f"invalid access token: {exc}") from exc
            if claims.get("typ") != "access":
                raise Unauthorized("not an access token")
            return claims
        raise Unauthorized("access token signature invalid") from last

    def verify(self, token: str) -> Principal:
        c = self.claims(token)
        try:
            return Principal(
                user_id=UUID(c["sub"]),
                username=str(c.get("name", "")),
                display_name=str(c.get("dn") or c.get("name") or ""),
                roles=frozenset(c.get("roles", [])),
                facility_id=UUID(c["fac"]),
                serves=frozenset(UUID(f) for f in c.get("serves", [])),
                region_id=UUID(c["region"]) if c.get("region") else None,
                token_id=c.get("jti"),
            )
        except (KeyError, ValueError, TypeError) as exc:
            raise Unauthorized("access token claims incomplete") from exc


def bearer_token(request: Request) -> str | None:
    header = request.headers.get("authorization", "")
    scheme, _, value = header.partition(" ")
    if scheme.lower() == "bearer" and value.strip():
        return value.strip()
    return None


def current_principal(request: Request) -> Principal:
    """FastAPI dependency: the verified caller, or 401."""
    cached = getattr(request.state, "principal", None)
    if isinstance(cached, Principal):
        return cached
    token = bearer_token(request)
    if token is None:
        raise Unauthorized("a bearer access token is required")
    verifier: TokenVerifier | None = getattr(request.app.state, "token_verifier", None)
    if verifier is None:
        raise Unavailable("token verification is not ready: the gateway's public key is missing")
    principal = verifier.verify(token)
    request.state.principal = principal
    return principal


def require_roles(*roles: str) -> Callable[[Request], Principal]:
    """FastAPI dependency factory: the caller must hold one of ``roles``."""
    wanted = frozenset(roles)

    def dependency(request: Request) -> Principal:
        principal = current_principal(request)
        if not principal.roles.intersection(wanted):
            raise Forbidden(f"this action needs one of the roles: {', '.join(sorted(wanted))}")
        return principal

    return dependency


def require_clinical(request: Request) -> Principal:
    """FastAPI dependency: a clinical role (never a bureau analyst or a pure admin)."""
    principal = current_principal(request)
    if not principal.is_clinical:
        raise Forbidden("patient records are open to clinical roles only")
    return principal
