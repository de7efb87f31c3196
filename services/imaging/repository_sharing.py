"""SQL of share links, grants, tiering policies and de-identified exports (migrations/0005).

Transactions belong to the caller. Share-link and grant lookups for callers outside the owner facility run in
a platform (system) transaction opened by services/imaging/sharing.py, and name exactly one study.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from datetime import datetime
from typing import Any
from uuid import UUID

import asyncpg

SHARE_COLUMNS = ("sh.id, sh.facility_id, sh.study_ref, s.study_instance_uid AS study_uid, sh.note, sh.created_by,"
                 " sh.created_by_facility, sh.created_at, sh.expires_at, sh.revoked_at, sh.access_count,"
                 " sh.last_access_at")


async def study_row(conn: asyncpg.Connection, study_uid: str, visible: Iterable[UUID]) -> asyncpg.Record | None:
    """id, owner facility and tier of a visible study."""
    return await conn.fetchrow(
        "SELECT id, facility_id, study_instance_uid, storage_tier FROM imaging.studies"
        " WHERE study_instance_uid = $1 AND facility_id = ANY($2::uuid[])",
        study_uid, list(visible),
    )


async def insert_share(conn: asyncpg.Connection, *, facility_id: UUID, study_ref: UUID, token_hash: str, note: str,
                       created_by: UUID, created_by_facility: UUID, expires_at: datetime) -> UUID:
    share_id = uuid.uuid4()
    await conn.execute(
        "INSERT INTO imaging.shares (id, facility_id, study_ref, token_hash, note, created_by, created_by_facility,"
        " expires_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
        share_id, facility_id, study_ref, token_hash, note, created_by, created_by_facility, expires_at,
    )
    return share_id


async def shares_of(conn: asyncpg.Connection, study_ref: UUID) -> list[asyncpg.Record]:
    return list(await conn.fetch(
        f"SELECT {SHARE_COLUMNS} FROM imaging.shares sh JOIN imaging.studies s ON s.id = sh.study_ref"  # noqa: S608
        " WHERE sh.study_ref = $1 ORDER BY sh.created_at DESC",
        study_ref,
    ))


async def share_by_id(conn: asyncpg.Connection, study_ref: UUID, share_id: UUID) -> asyncpg.Record | None:
    return await conn.fetchrow(
        f"SELECT {SHARE_COLUMNS} FROM imaging.shares sh JOIN imaging.studies s ON s.id = sh.study_ref"  # noqa: S608
        " WHERE sh.id = $1 AND sh.study_ref = $2",
        share_id, study_ref,
    )


async def revoke_share(conn: asyncpg.Connection, share_id: UUID, by: UUID) -> None:
    await conn.execute(
        "UPDATE imaging.shares SET revoked_at = coalesce(revoked_at, now()), revoked_by = coalesce(revoked_by, $2)"
        " WHERE id = $1",
        share_id, by,
    )


async def share_by_token_hash(conn: asyncpg.Connection, token_hash: str) -> asyncpg.Record | None:
    """The share of a token (system transaction), with ``now()`` to judge expiry by the database clock."""
    return await conn.fetchrow(
        f"SELECT {SHARE_COLUMNS}, now() AS now FROM imaging.shares sh"  # noqa: S608
        " JOIN imaging.studies s ON s.id = sh.study_ref WHERE sh.token_hash = $1",
        token_hash,
    )


async def touch_share(conn: asyncpg.Connection, share_id: UUID) -> None:
    await conn.execute(
        "UPDATE imaging.shares SET access_count = access_count + 1, last_access_at = now() WHERE id = $1", share_id)


# -- grants ---------------------------------------------------------------------------------------


async def study_by_uid(conn: asyncpg.Connection, study_uid: str) -> asyncpg.Record | None:
    """Any study by UID (system transaction only)."""
    return await conn.fetchrow(
        "SELECT id, facility_id, study_instance_uid, storage_tier FROM imaging.studies WHERE study_instance_uid = $1",
        study_uid,
    )


async def insert_grant(conn: asyncpg.Connection, values: dict[str, Any]) -> UUID:
    grant_id = uuid.uuid4()
    await conn.execute(
        "INSERT INTO imaging.grants (id, facility_id, study_ref, grantee_facility_id, grantee_user_id, reason,"
        " reference, expires_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
        grant_id, values["facility_id"], values["study_ref"], values["grantee_facility_id"],
        values["grantee_user_id"], values["reason"], values["reference"], values["expires_at"],
    )
    return grant_id


async def revoke_grant(conn: asyncpg.Connection, grant_id: UUID) -> bool:
    done = await conn.execute(
        "UPDATE imaging.grants SET revoked_at = now() WHERE id = $1 AND revoked_at IS NULL", grant_id)
    return str(done) == "UPDATE 1"


async def grant_exists(conn: asyncpg.Connection, grant_id: UUID) -> bool:
    return bool(await conn.fetchval("SELECT EXISTS (SELECT 1 FROM imaging.grants WHERE id = $1)", grant_id))


async def granted_study_owner(conn: asyncpg.Connection, study_uid: str, facility_id: UUID,
                              user_id: UUID) -> UUID | None:
    """The owner facility of ``study_uid`` when a live grant names this facility or user (system transaction)."""
    value: UUID | None = await conn.fetchval(
        "SELECT s.facility_id FROM imaging.grants g JOIN imaging.studies s ON s.id = g.study_ref"
        " WHERE s.study_instance_uid = $1 AND g.revoked_at IS NULL"
        " AND (g.expires_at IS NULL OR g.expires_at > now())"
        " AND (g.grantee_facility_id = $2 OR g.grantee_user_id = $3) LIMIT 1",
        study_uid, facility_id, user_id,
    )
    return value


# -- tiering --------------------------------------------------------------------------------------


async def studies_due_cold(conn: asyncpg.Connection, default_days: int, limit: int) -> list[asyncpg.Record]:
    """Hot studies older than their facility's days-until-cold (system transaction)."""
    return list(await conn.fetch(
        "SELECT s.id, s.facility_id, s.study_instance_uid FROM imaging.studies s"
        " LEFT JOIN imaging.tiering_policies p ON p.facility_id = s.facility_id"
        " WHERE s.storage_tier = 'hot'"
        " AND s.received_at < now() - make_interval(days => coalesce(p.cold_after_days, $1))"
        " AND (s.tiered_at IS NULL OR s.tiered_at < now() - make_interval(days => coalesce(p.cold_after_days, $1)))"
        " ORDER BY s.received_at LIMIT $2",
        default_days, limit,
    ))


async def study_instances_for_move(conn: asyncpg.Connection, study_ref: UUID) -> list[asyncpg.Record]:
    return list(await conn.fetch(
        "SELECT id, object_key, sha256, size_bytes FROM imaging.instances WHERE study_ref = $1 ORDER BY id",
        study_ref,
    ))


async def lock_study_for_move(conn: asyncpg.Connection, study_ref: UUID) -> asyncpg.Record | None:
    return await conn.fetchrow(
        "SELECT id, facility_id, storage_tier FROM imaging.studies WHERE id = $1 FOR UPDATE", study_ref)


async def switch_instance_key(conn: asyncpg.Connection, instance_id: UUID, old_key: str, new_key: str) -> bool:
    """Point an instance at its copy in the other tier, if it still points at ``old_key``."""
    done = await conn.execute(
        "UPDATE imaging.instances SET object_key = $3 WHERE id = $1 AND object_key = $2", instance_id, old_key,
        new_key)
    return str(done) == "UPDATE 1"


async def set_study_tier(conn: asyncpg.Connection, study_ref: UUID, tier: str) -> None:
    await conn.execute("UPDATE imaging.studies SET storage_tier = $2, tiered_at = now() WHERE id = $1",
                       study_ref, tier)


async def cold_after_days(conn: asyncpg.Connection, facility_id: UUID) -> int | None:
    value: int | None = await conn.fetchval(
        "SELECT cold_after_days FROM imaging.tiering_policies WHERE facility_id = $1", facility_id)
    return value


async def set_cold_after_days(conn: asyncpg.Connection, facility_id: UUID, days: int) -> None:
    await conn.execute(
        "INSERT INTO imaging.tiering_policies (facility_id, cold_after_days) VALUES ($1, $2)"
        " ON CONFLICT (facility_id) DO UPDATE SET cold_after_days = excluded.cold_after_days, updated_at = now()",
        facility_id, days,
    )


# -- exports --------------------------------------------------------------------------------------


async def insert_export(conn: asyncpg.Connection, facility_id: UUID, requested_by: UUID,
                        study_uids: list[str]) -> UUID:
    export_id = uuid.uuid4()
    await conn.execute(
        "INSERT INTO imaging.exports (id, facility_id, requested_by, study_uids) VALUES ($1, $2, $3, $4)",
        export_id, facility_id, requested_by, study_uids,
    )
    return export_id


async def export_row(conn: asyncpg.Connection, export_id: UUID) -> asyncpg.Record | None:
    return await conn.fetchrow(
        "SELECT id, facility_id, requested_by, study_uids, status, object_key, size_bytes, sha256,"
        " report::text AS report, error, created_at, finished_at FROM imaging.exports WHERE id = $1",
        export_id,
    )


async def set_export_status(conn: asyncpg.Connection, export_id: UUID, status: str, *, object_key: str | None = None,
                            size_bytes: int | None = None, sha256: str | None = None, report: str = "{}",
                            error: str | None = None) -> None:
    await conn.execute(
        "UPDATE imaging.exports SET status = $2, object_key = coalesce($3, object_key),"
        " size_bytes = coalesce($4, size_bytes), sha256 = coalesce($5, sha256), report = $6::text::jsonb,"
        " error = $7, finished_at = CASE WHEN $2 IN ('ready', 'failed') THEN now() END WHERE id = $1",
        export_id, status, object_key, size_bytes, sha256, report, error,
    )
