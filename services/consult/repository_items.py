"""SQL of a consult's consents, attachments, item grants and history look-ups (migrations/0002).
The caller owns the transaction.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any
from uuid import UUID

import asyncpg

from services.consult.schemas import AttachmentRow, ConsentRow, ConsultRow, GrantRow

CONSENT_COLUMNS = ("id, consult_id, method, signer_name, relation, statement_version, statement_hash, content_type,"
                   " size_bytes, sha256, object_key IS NOT NULL AS has_file, recorded_by, recorded_by_name,"
                   " recorded_at, withdrawn_at")
GRANT_COLUMNS = ("id, consult_id, kind, ref, grantee_user_id, status, remote_grant_id, expires_at, attempts,"
                 " last_error, applied_at, revoke_requested_at, revoked_at")


async def status_before(conn: asyncpg.Connection, consult_id: UUID, action: str) -> str | None:
    """The status the consult had before its latest ``action``."""
    value: str | None = await conn.fetchval(
        "SELECT from_status FROM consult.transitions WHERE consult_id = $1 AND action = $2 ORDER BY at DESC LIMIT 1",
        consult_id, action,
    )
    return value


async def has_transition(conn: asyncpg.Connection, consult_id: UUID, action: str) -> bool:
    return bool(await conn.fetchval(
        "SELECT EXISTS (SELECT 1 FROM consult.transitions WHERE consult_id = $1 AND action = $2)", consult_id, action))


# -- consents -----------------------------------------------------------------------------------------


async def current_consent(conn: asyncpg.Connection, consult_id: UUID) -> ConsentRow | None:
    row = await conn.fetchrow(
        f"SELECT {CONSENT_COLUMNS} FROM consult.consents WHERE consult_id = $1 AND withdrawn_at IS NULL"  # noqa: S608
        " ORDER BY recorded_at DESC LIMIT 1",
        consult_id,
    )
    return ConsentRow.model_validate(dict(row)) if row is not None else None


async def insert_consent(conn: asyncpg.Connection, c: ConsultRow, values: dict[str, Any]) -> UUID:
    cid = uuid.uuid4()
    await conn.execute(
        "INSERT INTO consult.consents (id, consult_id, facility_id, target_facility_id, method, signer_name, relation,"
        " statement_version, statement_hash, object_key, content_type, size_bytes, sha256, recorded_by,"
        " recorded_by_name) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15)",
        cid, c.id, c.facility_id, c.target_facility_id, values["method"], values["signer_name"], values["relation"],
        values["statement_version"], values["statement_hash"], values.get("object_key"),
        values.get("content_type"), values.get("size_bytes"), values.get("sha256"), values["recorded_by"],
        values["recorded_by_name"],
    )
    return cid


async def withdraw_consents(conn: asyncpg.Connection, consult_id: UUID, by: UUID) -> int:
    done = await conn.execute(
        "UPDATE consult.consents SET withdrawn_at = now(), withdrawn_by = $2"
        " WHERE consult_id = $1 AND withdrawn_at IS NULL",
        consult_id, by,
    )
    return int(str(done).split()[-1])


async def consent_file(conn: asyncpg.Connection, consult_id: UUID) -> asyncpg.Record | None:
    """The newest signed form of the consult (withdrawn or not: it stays part of the record)."""
    return await conn.fetchrow(
        "SELECT object_key, content_type, size_bytes FROM consult.consents"
        " WHERE consult_id = $1 AND object_key IS NOT NULL ORDER BY recorded_at DESC LIMIT 1",
        consult_id,
    )


# -- attachments ------------------------------------------------------------------------------------


async def attachments(conn: asyncpg.Connection, consult_id: UUID) -> list[AttachmentRow]:
    rows = await conn.fetch(
        "SELECT id, consult_id, kind, ref, label, added_by, added_at FROM consult.attachments"
        " WHERE consult_id = $1 ORDER BY added_at, id",
        consult_id,
    )
    return [AttachmentRow.model_validate(dict(r)) for r in rows]


async def insert_attachment(conn: asyncpg.Connection, c: ConsultRow, *, kind: str, ref: str, label: str,
                            added_by: UUID) -> UUID | None:
    """The new attachment's id; None when the same item is attached already."""
    aid = uuid.uuid4()
    done = await conn.execute(
        "INSERT INTO consult.attachments (id, consult_id, facility_id, target_facility_id, kind, ref, label, added_by)"
        " VALUES ($1, $2, $3, $4, $5, $6, $7, $8) ON CONFLICT (consult_id, kind, ref) DO NOTHING",
        aid, c.id, c.facility_id, c.target_facility_id, kind, ref, label, added_by,
    )
    return aid if str(done).endswith(" 1") else None


async def delete_attachment(conn: asyncpg.Connection, consult_id: UUID, attachment_id: UUID) -> bool:
    done = await conn.execute("DELETE FROM consult.attachments WHERE consult_id = $1 AND id = $2",
                              consult_id, attachment_id)
    return str(done) == "DELETE 1"


# -- item grants ----------------------------------------------------------------------------------------


async def grants(conn: asyncpg.Connection, consult_id: UUID) -> list[GrantRow]:
    rows = await conn.fetch(
        f"SELECT {GRANT_COLUMNS} FROM consult.item_grants WHERE consult_id = $1 ORDER BY created_at, id",  # noqa: S608
        consult_id,
    )
    return [GrantRow.model_validate(dict(r)) for r in rows]


async def insert_grant(conn: asyncpg.Connection, c: ConsultRow, a: AttachmentRow, grantee: UUID,
                       expires_at: datetime, status: str = "pending", last_error: str | None = None) -> UUID:
    gid = uuid.uuid4()
    await conn.execute(
        "INSERT INTO consult.item_grants (id, consult_id, facility_id, target_facility_id, attachment_id, kind, ref,"
        " grantee_user_id, status, expires_at, last_error) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)",
        gid, c.id, c.facility_id, c.target_facility_id, a.id, a.kind, a.ref, grantee, status, expires_at, last_error,
    )
    return gid


async def request_revocation(conn: asyncpg.Connection, consult_id: UUID, grantee: UUID | None = None) -> None:
    """Pending grants (never pushed) become revoked at once; active ones are marked for withdrawal."""
    await conn.execute(
        "UPDATE consult.item_grants SET status = 'revoked', revoked_at = now(), revoke_requested_at = now()"
        " WHERE consult_id = $1 AND status IN ('pending', 'failed') AND ($2::uuid IS NULL OR grantee_user_id = $2)",
        consult_id, grantee,
    )
    await conn.execute(
        "UPDATE consult.item_grants SET revoke_requested_at = coalesce(revoke_requested_at, now())"
        " WHERE consult_id = $1 AND status = 'active' AND ($2::uuid IS NULL OR grantee_user_id = $2)",
        consult_id, grantee,
    )


async def work(conn: asyncpg.Connection, consult_id: UUID | None, limit: int = 200) -> list[GrantRow]:
    """Grants to push or to withdraw (of one consult, or all), locked for this worker."""
    rows = await conn.fetch(
        f"SELECT {GRANT_COLUMNS} FROM consult.item_grants"  # noqa: S608
        " WHERE (status = 'pending' OR (status = 'active' AND revoke_requested_at IS NOT NULL))"
        " AND ($1::uuid IS NULL OR consult_id = $1) ORDER BY created_at LIMIT $2 FOR UPDATE SKIP LOCKED",
        consult_id, limit,
    )
    return [GrantRow.model_validate(dict(r)) for r in rows]


async def mark_grant(conn: asyncpg.Connection, grant_id: UUID, **values: Any) -> None:
    allowed = {"status", "remote_grant_id", "last_error", "applied_at", "revoked_at", "attempts"}
    if set(values) - allowed:
        raise ValueError(f"not writable: {sorted(set(values) - allowed)}")
    sets = ", ".join(f"{k} = ${i}" for i, k in enumerate(values, start=2))
    await conn.execute(f"UPDATE consult.item_grants SET {sets} WHERE id = $1", grant_id, *values.values())  # noqa: S608
