"""Grants: one recording readable by a named user or facility beyond the standing policy (owner facility and
its reading centre), added and withdrawn by the consult service through the internal API (``X-Internal-Key``).

A grant is honoured by the recording's read paths (detail, signal, report, report PDF/DICOM) through
:func:`read_with_grants`: the read runs under the caller's own scope first; only when that finds nothing and a
live grant (not revoked, not expired) names the caller, it runs again as the platform scoped to the
recording's owner facility. Grants never open writes (claim, report edits, signing).
"""

from __future__ import annotations

import hmac
from collections.abc import Awaitable, Callable, Iterable
from datetime import datetime
from typing import Any, TypeVar
from uuid import UUID

import asyncpg

from common.auth import Principal, system_principal
from common.db import Database
from common.errors import Invalid, NotFound, Unauthorized
from services.ecg import repository_grants as rg

T = TypeVar("T")
GRANT_REASONS = ("consult", "share")


def check_internal_key(expected: str, given: str | None) -> None:
    """Constant-time check of the X-Internal-Key header."""
    if not given or not expected or not hmac.compare_digest(given.encode(), expected.encode()):
        raise Unauthorized("a valid internal key is required")


async def add_grant(db: Database, *, recording_id: UUID, grantee_facility_id: UUID | None,
                    grantee_user_id: UUID | None, reason: str, reference: str,
                    expires_at: datetime | None) -> dict[str, Any]:
    if grantee_facility_id is None and grantee_user_id is None:
        raise Invalid("a grant names a grantee facility or user")
    if reason not in GRANT_REASONS:
        raise Invalid(f"reason must be one of {', '.join(GRANT_REASONS)}")
    async with db.transaction(system_principal()) as conn:
        owner = await rg.recording_owner(conn, recording_id)
        if owner is None:
            raise NotFound("no such recording")
        grant_id = await rg.insert_grant(conn, facility_id=owner, recording_id=recording_id,
                                         grantee_facility_id=grantee_facility_id, grantee_user_id=grantee_user_id,
                                         reason=reason, reference=reference[:200], expires_at=expires_at)
    return {"id": str(grant_id), "recording_id": str(recording_id), "owner_facility_id": str(owner),
            "grantee_facility_id": str(grantee_facility_id) if grantee_facility_id else None,
            "grantee_user_id": str(grantee_user_id) if grantee_user_id else None, "reason": reason,
            "reference": reference, "expires_at": expires_at.isoformat() if expires_at else None}


async def remove_grant(db: Database, grant_id: UUID) -> None:
    async with db.transaction(system_principal()) as conn:
        if not await rg.revoke_grant(conn, grant_id):
            raise NotFound("no such grant")


async def granted_scope(db: Database, principal: Principal,
                        recording_id: UUID) -> tuple[Principal, frozenset[UUID]] | None:
    """(the platform, {owner}) when a live grant lets ``principal`` read ``recording_id``; None otherwise."""
    if not principal.is_clinical or principal.system:
        return None
    async with db.transaction(system_principal()) as conn:
        owner = await rg.granted_owner(conn, recording_id, principal.facility_id, principal.user_id)
    if owner is None:
        return None
    return system_principal(owner), frozenset({owner})


async def read_with_grants(db: Database, principal: Principal, recording_id: UUID,
                           read: Callable[[asyncpg.Connection, Iterable[UUID]], Awaitable[T | None]]) -> T | None:
    """``read(conn, visible_facilities)`` under the caller's scope, else under a grant's (see module doc)."""
    async with db.transaction(principal) as conn:
        found = await read(conn, principal.visible_facility_ids)
    if found is not None:
        return found
    scope = await granted_scope(db, principal, recording_id)
    if scope is None:
        return None
    async with db.transaction(scope[0]) as conn:
        return await read(conn, scope[1])
