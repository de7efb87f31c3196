"""Share links and grants: a study readable beyond its owner facility and that facility's reading centre.

Share link: the owner facility (or its reading centre) creates an expiring, revocable link for one study. The
token (``secrets.token_urlsafe(32)``, 256 bits) is shown once; only its sha256 is stored. Every request on the
public path ``/api/imaging/shared/...`` resolves the token again (unknown → 404, expired or revoked → 410) and
reads exactly that study, as the platform, scoped to the study's owner facility. Accesses are audited by share
id; the token is never written anywhere (it travels as the ``token`` query parameter or the ``X-Share-Token``
header, neither of which the platform's audit records).

Grant: a row naming a study and a grantee facility or user (reason consult/share, optional expiry). The
consult service adds and removes them through the internal API. A grant makes the study readable by WADO-RS
(instances, metadata, rendered, frames, the ZIP) for the grantee through :func:`granted_scope`, the hook that
services/imaging/service_retrieve.py consults when the standing policy finds nothing.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import lru_cache
from typing import Any
from uuid import UUID

from pydantic_settings import SettingsConfigDict

from common.auth import Principal, system_principal
from common.config import ServiceSettings
from common.errors import AppError, Forbidden, Invalid, NotFound, Unauthorized
from services.imaging import repository_sharing as rs
from services.imaging.service import Archive, require_reader, visible_facilities

SHARE_ROLES = ("township_doctor", "technician", "specialist")
GRANT_REASONS = ("consult", "share")


class Gone(AppError):
    """A share link that existed but was revoked or has expired."""

    status, code = 410, "gone"


class SharingSettings(ServiceSettings):
    model_config = SettingsConfigDict(env_prefix="IMAGING_", extra="ignore", case_sensitive=False)

    # The longest a share link may live (days); a request asking for more is refused (422).
    share_max_days: int = 30


@lru_cache(maxsize=1)
def sharing_settings() -> SharingSettings:
    return SharingSettings()


# The browser page that opens a share link (web/src/imaging/shared): the token rides in the fragment, which the
# browser never sends, so loading the page leaves it in no server or proxy log; the page sends it as
# X-Share-Token to the public path.
SHARE_PAGE = "/imaging/shared"


def share_link(token: str) -> str:
    """The web page of a share link, relative to the gateway's origin."""
    return f"{SHARE_PAGE}#token={token}"


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


@dataclass(frozen=True)
class ShareAccess:
    """A valid share: what the public path may read."""

    share_id: UUID
    study_uid: str
    owner: UUID
    expires_at: datetime | None = None

    def scope(self) -> tuple[Principal, frozenset[UUID]]:
        return system_principal(self.owner), frozenset({self.owner})


def share_json(row: Any, now: datetime | None = None) -> dict[str, Any]:
    expired = now is not None and row["expires_at"] <= now
    return {"id": str(row["id"]), "study_uid": row["study_uid"], "note": row["note"],
            "created_by": str(row["created_by"]), "created_by_facility": str(row["created_by_facility"]),
            "created_at": row["created_at"].isoformat(), "expires_at": row["expires_at"].isoformat(),
            "revoked_at": row["revoked_at"].isoformat() if row["revoked_at"] else None,
            "status": "revoked" if row["revoked_at"] else "expired" if expired else "active",
            "access_count": row["access_count"],
            "last_access_at": row["last_access_at"].isoformat() if row["last_access_at"] else None}


async def _own_study(archive: Archive, principal: Principal, study_uid: str) -> Any:
    """A study the caller sees by standing policy (owner facility or its reading centre), or 404."""
    require_reader(principal)
    async with archive.db.transaction(principal) as conn:
        row = await rs.study_row(conn, study_uid, visible_facilities(principal))
    if row is None:
        raise NotFound("no such study")
    return row


async def create_share(archive: Archive, principal: Principal, study_uid: str, *, expires_at: datetime,
                       note: str = "") -> tuple[dict[str, Any], str]:
    """A new share link of a study: (its JSON, the token shown once)."""
    study = await _own_study(archive, principal, study_uid)
    if not principal.has_role(*SHARE_ROLES):
        raise Forbidden("sharing a study needs a township_doctor, technician or specialist role")
    now = datetime.now(expires_at.tzinfo)
    if expires_at.tzinfo is None:
        raise Invalid("expires_at must carry a time zone")
    if expires_at <= now:
        raise Invalid("expires_at must lie in the future")
    max_days = sharing_settings().share_max_days
    if expires_at > now + timedelta(days=max_days):
        raise Invalid(f"a share link lives at most {max_days} days")
    token = secrets.token_urlsafe(32)
    async with archive.db.transaction(principal) as conn:
        share_id = await rs.insert_share(conn, facility_id=study["facility_id"], study_ref=study["id"],
                                         token_hash=hash_token(token), note=note[:500], created_by=principal.user_id,
                                         created_by_facility=principal.facility_id, expires_at=expires_at)
        row = await rs.share_by_id(conn, study["id"], share_id)
    return share_json(row), token


async def list_shares(archive: Archive, principal: Principal, study_uid: str) -> list[dict[str, Any]]:
    study = await _own_study(archive, principal, study_uid)
    async with archive.db.transaction(principal) as conn:
        rows = await rs.shares_of(conn, study["id"])
        now = await conn.fetchval("SELECT now()")
    return [share_json(r, now) for r in rows]


async def revoke_share(archive: Archive, principal: Principal, study_uid: str, share_id: UUID) -> dict[str, Any]:
    study = await _own_study(archive, principal, study_uid)
    if not principal.has_role(*SHARE_ROLES):
        raise Forbidden("revoking a share needs a township_doctor, technician or specialist role")
    async with archive.db.transaction(principal) as conn:
        if await rs.share_by_id(conn, study["id"], share_id) is None:
            raise NotFound("no such share")
        await rs.revoke_share(conn, share_id, principal.user_id)
        row = await rs.share_by_id(conn, study["id"], share_id)
    return share_json(row)


class ShareRefused(Exception):
    """A known share that may not be used (for the audit: its id), carrying the error to answer."""

    def __init__(self, share_id: UUID, error: AppError):
        super().__init__(str(error))
        self.share_id, self.error = share_id, error


async def resolve_share(archive: Archive, token: str | None) -> ShareAccess:
    """The share a token opens: NotFound for an unknown token, ShareRefused(Gone) when revoked or expired."""
    if not token or len(token) > 200:
        raise NotFound("no such share")
    async with archive.db.transaction(system_principal()) as conn:
        row = await rs.share_by_token_hash(conn, hash_token(token))
        if row is None:
            raise NotFound("no such share")
        if row["revoked_at"] is not None:
            raise ShareRefused(row["id"], Gone("this share link was revoked"))
        if row["expires_at"] <= row["now"]:
            raise ShareRefused(row["id"], Gone("this share link has expired"))
        await rs.touch_share(conn, row["id"])
    return ShareAccess(row["id"], row["study_uid"], row["facility_id"], row["expires_at"])


# -- grants ---------------------------------------------------------------------------------------


def check_internal_key(expected: str, given: str | None) -> None:
    """Constant-time check of the X-Internal-Key header (the consult service's calls)."""
    if not given or not expected or not hmac.compare_digest(given.encode(), expected.encode()):
        raise Unauthorized("a valid internal key is required")


async def add_grant(archive: Archive, *, study_uid: str, grantee_facility_id: UUID | None,
                    grantee_user_id: UUID | None, reason: str, reference: str,
                    expires_at: datetime | None) -> dict[str, Any]:
    if grantee_facility_id is None and grantee_user_id is None:
        raise Invalid("a grant names a grantee facility or user")
    if reason not in GRANT_REASONS:
        raise Invalid(f"reason must be one of {', '.join(GRANT_REASONS)}")
    async with archive.db.transaction(system_principal()) as conn:
        study = await rs.study_by_uid(conn, study_uid)
        if study is None:
            raise NotFound("no such study")
        grant_id = await rs.insert_grant(conn, {
            "facility_id": study["facility_id"], "study_ref": study["id"], "grantee_facility_id": grantee_facility_id,
            "grantee_user_id": grantee_user_id, "reason": reason, "reference": reference[:200],
            "expires_at": expires_at})
    return {"id": str(grant_id), "study_uid": study_uid, "owner_facility_id": str(study["facility_id"]),
            "grantee_facility_id": str(grantee_facility_id) if grantee_facility_id else None,
            "grantee_user_id": str(grantee_user_id) if grantee_user_id else None, "reason": reason,
            "reference": reference, "expires_at": expires_at.isoformat() if expires_at else None}


async def remove_grant(archive: Archive, grant_id: UUID) -> None:
    async with archive.db.transaction(system_principal()) as conn:
        if not await rs.grant_exists(conn, grant_id):
            raise NotFound("no such grant")
        await rs.revoke_grant(conn, grant_id)


async def granted_scope(archive: Archive, principal: Principal,
                        study_uid: str) -> tuple[Principal, frozenset[UUID]] | None:
    """When a live grant lets ``principal`` read ``study_uid``: the principal and facilities to read it with
    (the platform, scoped to the study's owner facility). None otherwise. Clinical roles only."""
    if not principal.is_clinical or principal.system:
        return None
    async with archive.db.transaction(system_principal()) as conn:
        owner = await rs.granted_study_owner(conn, study_uid, principal.facility_id, principal.user_id)
    if owner is None:
        return None
    return system_principal(owner), frozenset({owner})
