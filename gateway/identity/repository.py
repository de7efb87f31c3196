"""SQL of users and refresh tokens (``gateway.users``, ``gateway.refresh_tokens``).

The caller owns the transaction. Facility-tree SQL lives in facility_repository.py.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any
from uuid import UUID

import asyncpg

from common.errors import Conflict
from gateway.identity.models import FacilityRef, RefreshTokenRecord, UserRecord, UserSummary

USER_UPDATABLE = frozenset({"display_name", "facility_id", "roles", "active"})

_USER_SELECT = """
SELECT u.id, u.username, u.display_name, u.facility_id, u.roles, u.password_hash, u.totp_secret,
       u.failed_attempts, u.locked_until, u.active, u.last_login_at, u.created_at, u.updated_at,
       f.active AS facility_active, f.name_zh AS facility_name_zh, f.name_en AS facility_name_en,
       f.kind AS facility_kind
FROM gateway.users u JOIN gateway.facilities f ON f.id = u.facility_id
"""


def _facility_ref(row: asyncpg.Record) -> FacilityRef:
    return FacilityRef(
        id=row["facility_id"],
        name_zh=row["facility_name_zh"],
        name_en=row["facility_name_en"],
        kind=row["facility_kind"],
    )


def _record(row: asyncpg.Record) -> UserRecord:
    return UserRecord(
        id=row["id"],
        username=row["username"],
        display_name=row["display_name"],
        facility_id=row["facility_id"],
        roles=list(row["roles"]),
        password_hash=row["password_hash"],
        totp_secret=bytes(row["totp_secret"]) if row["totp_secret"] is not None else None,
        failed_attempts=row["failed_attempts"],
        locked_until=row["locked_until"],
        active=row["active"],
        facility_active=row["facility_active"],
        facility=_facility_ref(row),
    )


def _summary(row: asyncpg.Record) -> UserSummary:
    return UserSummary(
        id=row["id"],
        username=row["username"],
        display_name=row["display_name"],
        facility=_facility_ref(row),
        roles=sorted(row["roles"]),
        active=row["active"],
        mfa_enrolled=row["totp_secret"] is not None,
        failed_attempts=row["failed_attempts"],
        locked_until=row["locked_until"],
        last_login_at=row["last_login_at"],
        created_at=row["created_at"],
        updated_at=row["updated_at"],
    )


# -- users -------------------------------------------------------------------------------------------


async def user_for_login(conn: asyncpg.Connection, username: str) -> UserRecord | None:
    """The user with ``username``, row-locked so concurrent attempts count one by one."""
    row = await conn.fetchrow(_USER_SELECT + " WHERE u.username = $1 FOR UPDATE OF u", username)
    return _record(row) if row else None


async def user_record(conn: asyncpg.Connection, user_id: UUID, *, for_update: bool = False) -> UserRecord | None:
    row = await conn.fetchrow(_USER_SELECT + " WHERE u.id = $1" + (" FOR UPDATE OF u" if for_update else ""), user_id)
    return _record(row) if row else None


async def user_summary(conn: asyncpg.Connection, user_id: UUID) -> UserSummary | None:
    row = await conn.fetchrow(_USER_SELECT + " WHERE u.id = $1", user_id)
    return _summary(row) if row else None


async def list_users(
    conn: asyncpg.Connection,
    *,
    facility_ids: list[UUID] | None,
    role: str | None = None,
    query: str | None = None,
    active: bool | None = None,
    limit: int = 50,
    offset: int = 0,
) -> tuple[list[UserSummary], int]:
    """Users at ``facility_ids`` (None: every facility), filtered; returns one page and the total."""
    conditions: list[str] = []
    args: list[Any] = []
    if facility_ids is not None:
        args.append(facility_ids)
        conditions.append(f"u.facility_id = ANY(${len(args)}::uuid[])")
    if role:
        args.append(role)
        conditions.append(f"${len(args)} = ANY(u.roles)")
    if query:
        args.append("%" + query.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%")
        conditions.append(f"(u.username ILIKE ${len(args)} OR u.display_name ILIKE ${len(args)})")
    if active is not None:
        args.append(active)
        conditions.append(f"u.active = ${len(args)}")
    where = (" WHERE " + " AND ".join(conditions)) if conditions else ""
    total = await conn.fetchval("SELECT count(*) FROM gateway.users u" + where, *args)
    rows = await conn.fetch(
        _USER_SELECT + where + f" ORDER BY u.username LIMIT ${len(args) + 1} OFFSET ${len(args) + 2}",
        *args,
        limit,
        offset,
    )
    return [_summary(r) for r in rows], int(total)


async def insert_user(
    conn: asyncpg.Connection,
    *,
    user_id: UUID,
    username: str,
    display_name: str,
    facility_id: UUID,
    roles: list[str],
    password_hash: str,
    totp_secret: bytes | None,
) -> None:
    try:
        await conn.execute(
            """
            INSERT INTO gateway.users (id, username, display_name, facility_id, roles, password_hash,
                totp_secret, totp_enrolled_at)
            VALUES ($1, $2, $3, $4, $5, $6, $7, CASE WHEN $7::bytea IS NULL THEN NULL ELSE now() END)
            """,
            user_id,
            username,
            display_name,
            facility_id,
            roles,
            password_hash,
            totp_secret,
        )
    except asyncpg.UniqueViolationError as exc:
        raise Conflict(f"the username {username} is taken") from exc


async def update_user(conn: asyncpg.Connection, user_id: UUID, changes: dict[str, Any]) -> None:
    unknown = set(changes) - USER_UPDATABLE
    if unknown:
        raise ValueError(f"not updatable: {sorted(unknown)}")
    if not changes:
        return
    names = sorted(changes)
    assignments = ", ".join(f"{n} = ${i + 2}" for i, n in enumerate(names))
    await conn.execute(
        f"UPDATE gateway.users SET {assignments}, updated_at = now() WHERE id = $1",
        user_id,
        *(changes[n] for n in names),
    )


async def record_failure(
    conn: asyncpg.Connection, user_id: UUID, *, failed_attempts: int, locked_until: datetime | None
) -> None:
    await conn.execute(
        "UPDATE gateway.users SET failed_attempts = $2, locked_until = $3 WHERE id = $1",
        user_id,
        failed_attempts,
        locked_until,
    )


async def record_login(conn: asyncpg.Connection, user_id: UUID, now: datetime) -> None:
    await conn.execute(
        "UPDATE gateway.users SET failed_attempts = 0, locked_until = NULL, last_login_at = $2 WHERE id = $1",
        user_id,
        now,
    )


async def set_password_hash(conn: asyncpg.Connection, user_id: UUID, password_hash: str, *, reset_lock: bool) -> None:
    await conn.execute(
        """
        UPDATE gateway.users SET password_hash = $2, password_changed_at = now(), updated_at = now(),
            failed_attempts = CASE WHEN $3 THEN 0 ELSE failed_attempts END,
            locked_until = CASE WHEN $3 THEN NULL ELSE locked_until END
        WHERE id = $1
        """,
        user_id,
        password_hash,
        reset_lock,
    )


async def set_totp_secret(conn: asyncpg.Connection, user_id: UUID, sealed: bytes) -> None:
    """Enrol a (new) authenticator; the replay mark belonged to the old secret's codes."""
    await conn.execute(
        "UPDATE gateway.users SET totp_secret = $2, totp_enrolled_at = now(), totp_last_step = NULL,"
        " updated_at = now() WHERE id = $1",
        user_id,
        sealed,
    )


async def claim_totp_step(conn: asyncpg.Connection, user_id: UUID, step: int) -> bool:
    """Record ``step`` as the last accepted TOTP time step; False when a code of this step or a later one
    was already accepted (a replay). One conditional UPDATE: of two racing sign-ins with one code, only
    one claims the step."""
    status: str = await conn.execute(
        "UPDATE gateway.users SET totp_last_step = $2"
        " WHERE id = $1 AND (totp_last_step IS NULL OR totp_last_step < $2)",
        user_id,
        step,
    )
    return status == "UPDATE 1"


async def unlock(conn: asyncpg.Connection, user_id: UUID) -> None:
    await conn.execute(
        "UPDATE gateway.users SET failed_attempts = 0, locked_until = NULL, updated_at = now() WHERE id = $1",
        user_id,
    )


# -- refresh tokens ----------------------------------------------------------------------------------

_TOKEN_COLUMNS = "id, user_id, family_id, expires_at, rotated_at, revoked_at"  # noqa: S105


async def insert_refresh_token(
    conn: asyncpg.Connection,
    *,
    token_id: UUID,
    user_id: UUID,
    family_id: UUID,
    token_hash: bytes,
    expires_at: datetime,
    user_agent: str | None,
    client_addr: str | None,
) -> None:
    await conn.execute(
        """
        INSERT INTO gateway.refresh_tokens (id, user_id, family_id, token_hash, expires_at, user_agent,
            client_addr)
        VALUES ($1, $2, $3, $4, $5, $6, $7)
        """,
        token_id,
        user_id,
        family_id,
        token_hash,
        expires_at,
        user_agent,
        client_addr,
    )


async def refresh_token_for_update(conn: asyncpg.Connection, token_hash: bytes) -> RefreshTokenRecord | None:
    row = await conn.fetchrow(
        f"SELECT {_TOKEN_COLUMNS} FROM gateway.refresh_tokens WHERE token_hash = $1 FOR UPDATE", token_hash
    )
    return RefreshTokenRecord.model_validate(dict(row)) if row else None


async def mark_rotated(conn: asyncpg.Connection, token_id: UUID, now: datetime) -> None:
    await conn.execute("UPDATE gateway.refresh_tokens SET rotated_at = $2 WHERE id = $1", token_id, now)


async def revoke_family(conn: asyncpg.Connection, family_id: UUID, now: datetime, reason: str) -> int:
    status = await conn.execute(
        "UPDATE gateway.refresh_tokens SET revoked_at = $2, revoke_reason = $3"
        " WHERE family_id = $1 AND revoked_at IS NULL",
        family_id,
        now,
        reason,
    )
    return int(status.split()[-1])


async def revoke_user_tokens(conn: asyncpg.Connection, user_id: UUID, now: datetime, reason: str) -> int:
    status = await conn.execute(
        "UPDATE gateway.refresh_tokens SET revoked_at = $2, revoke_reason = $3"
        " WHERE user_id = $1 AND revoked_at IS NULL",
        user_id,
        now,
        reason,
    )
    return int(status.split()[-1])


async def purge_refresh_tokens(conn: asyncpg.Connection, expired_before: datetime) -> int:
    """Forget tokens that expired before ``expired_before`` (they can no longer be used or reused)."""
    status = await conn.execute("DELETE FROM gateway.refresh_tokens WHERE expires_at < $1", expired_before)
    return int(status.split()[-1])
