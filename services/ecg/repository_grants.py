"""SQL of recording grants (migrations/0007). Run in platform (system) transactions by services/ecg/grants.py."""

from __future__ import annotations

import uuid
from datetime import datetime
from uuid import UUID

import asyncpg


async def recording_owner(conn: asyncpg.Connection, recording_id: UUID) -> UUID | None:
    value: UUID | None = await conn.fetchval("SELECT facility_id FROM ecg.recordings WHERE id = $1", recording_id)
    return value


async def insert_grant(conn: asyncpg.Connection, *, facility_id: UUID, recording_id: UUID,
                       grantee_facility_id: UUID | None, grantee_user_id: UUID | None, reason: str, reference: str,
                       expires_at: datetime | None) -> UUID:
    grant_id = uuid.uuid4()
    await conn.execute(
        "INSERT INTO ecg.grants (id, facility_id, recording_id, grantee_facility_id, grantee_user_id, reason,"
        " reference, expires_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
        grant_id, facility_id, recording_id, grantee_facility_id, grantee_user_id, reason, reference, expires_at,
    )
    return grant_id


async def revoke_grant(conn: asyncpg.Connection, grant_id: UUID) -> bool:
    """False when there is no such grant (a revoked one counts as found)."""
    done = await conn.execute("UPDATE ecg.grants SET revoked_at = coalesce(revoked_at, now()) WHERE id = $1", grant_id)
    return str(done) == "UPDATE 1"


async def granted_owner(conn: asyncpg.Connection, recording_id: UUID, facility_id: UUID,
                        user_id: UUID) -> UUID | None:
    """The owner facility of ``recording_id`` when a live grant names this facility or user."""
    value: UUID | None = await conn.fetchval(
        "SELECT g.facility_id FROM ecg.grants g WHERE g.recording_id = $1 AND g.revoked_at IS NULL"
        " AND (g.expires_at IS NULL OR g.expires_at > now())"
        " AND (g.grantee_facility_id = $2 OR g.grantee_user_id = $3) LIMIT 1",
        recording_id, facility_id, user_id,
    )
    return value
