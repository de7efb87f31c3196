"""SQL of the duty roster and of the reading-centre mapping. Transactions belong to the caller.

Roster reads name the facility explicitly (row-level security is the second wall). ``on_duty_for`` is
asked by the platform itself (the analysis and escalation tasks run as system).
"""

# ruff: noqa: S608  (as for repository.py: SQL joins only column-name constants; values are bind parameters)

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from typing import Any
from uuid import UUID

import asyncpg

from common.errors import Conflict
from services.ecg.schemas import DutyShift

_COLUMNS = (
    "s.id, s.facility_id, s.user_id, s.display_name, s.starts_at, s.ends_at, s.created_by, s.created_by_name,"
    " s.created_at"
)


def _shift(row: Any) -> DutyShift:
    return DutyShift(**dict(row))


async def insert_shift(conn: asyncpg.Connection, values: dict[str, Any]) -> DutyShift:
    """Add a shift; 409 when the user already has a shift that overlaps it."""
    try:
        async with conn.transaction():  # a savepoint: the caller's transaction survives the 409
            row = await conn.fetchrow(
                "INSERT INTO ecg.duty_shifts AS s (id, facility_id, user_id, display_name, starts_at, ends_at,"
                " created_by, created_by_name) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)"
                f" RETURNING {_COLUMNS}",
                values["id"], values["facility_id"], values["user_id"], values["display_name"],
                values["starts_at"], values["ends_at"], values["created_by"], values["created_by_name"],
            )
    except asyncpg.ExclusionViolationError as exc:
        raise Conflict(f"{values['display_name']} already has a shift overlapping that time") from exc
    assert row is not None
    return _shift(row)


async def list_shifts(
    conn: asyncpg.Connection, facility_id: UUID, since: datetime, until: datetime, user_id: UUID | None = None
) -> list[DutyShift]:
    """Shifts of ``facility_id`` that overlap [since, until), earliest first."""
    rows = await conn.fetch(
        f"SELECT {_COLUMNS} FROM ecg.duty_shifts s WHERE s.facility_id = $1 AND s.ends_at > $2"
        " AND s.starts_at < $3 AND ($4::uuid IS NULL OR s.user_id = $4) ORDER BY s.starts_at, s.display_name"
        " LIMIT 1000",
        facility_id, since, until, user_id,
    )
    return [_shift(r) for r in rows]


async def current_shifts(conn: asyncpg.Connection, facility_ids: Iterable[UUID]) -> list[DutyShift]:
    rows = await conn.fetch(
        f"SELECT {_COLUMNS} FROM ecg.duty_shifts s WHERE s.facility_id = ANY($1::uuid[])"
        " AND s.starts_at <= now() AND s.ends_at > now() ORDER BY s.facility_id, s.starts_at, s.display_name",
        list(facility_ids),
    )
    return [_shift(r) for r in rows]


async def get_shift(conn: asyncpg.Connection, shift_id: UUID, facility_id: UUID, *, lock: bool) -> DutyShift | None:
    row = await conn.fetchrow(
        f"SELECT {_COLUMNS} FROM ecg.duty_shifts s WHERE s.id = $1 AND s.facility_id = $2"
        + (" FOR UPDATE OF s" if lock else ""),
        shift_id, facility_id,
    )
    return _shift(row) if row else None


async def take_off(conn: asyncpg.Connection, shift_id: UUID) -> str:
    """End a running shift now, remove one that has not started; "ended", "removed" or "past"."""
    ended = await conn.fetchval(
        "UPDATE ecg.duty_shifts SET ends_at = now() WHERE id = $1 AND starts_at < now() AND ends_at > now()"
        " RETURNING id",
        shift_id,
    )
    if ended is not None:
        return "ended"
    removed = await conn.fetchval(
        "DELETE FROM ecg.duty_shifts WHERE id = $1 AND starts_at >= now() RETURNING id", shift_id
    )
    return "removed" if removed is not None else "past"


# -- which facilities a reading centre reads for ---------------------------------------------------------


async def learn_reading_centre(conn: asyncpg.Connection, facility_id: UUID, serves: Iterable[UUID]) -> None:
    """Remember what ``facility_id`` reads for (from a signed token of its own staff); forget it when it reads
    for nobody any more. Writes only when something changed."""
    served = sorted(set(serves), key=str)
    if not served:
        await conn.execute("DELETE FROM ecg.reading_centres WHERE facility_id = $1", facility_id)
        return
    await conn.execute(
        "INSERT INTO ecg.reading_centres AS rc (facility_id, serves) VALUES ($1, $2::uuid[])"
        " ON CONFLICT (facility_id) DO UPDATE SET serves = EXCLUDED.serves, learned_at = now()"
        " WHERE rc.serves IS DISTINCT FROM EXCLUDED.serves",
        facility_id, served,
    )


async def reading_centres_of(conn: asyncpg.Connection, facility_id: UUID) -> list[UUID]:
    """The reading facilities known to read for ``facility_id`` (system transactions only: RLS hides the
    reading centre's row from the facilities it serves)."""
    rows = await conn.fetch(
        "SELECT facility_id FROM ecg.reading_centres WHERE serves @> ARRAY[$1]::uuid[] ORDER BY facility_id",
        facility_id,
    )
    return [r["facility_id"] for r in rows]


async def on_duty_for(conn: asyncpg.Connection, facility_id: UUID) -> list[DutyShift]:
    """The shifts on duty now for a recording of ``facility_id``: at the reading centre(s) that read for it,
    or at the facility itself when it reads its own. One per reader."""
    rows = await conn.fetch(
        f"SELECT DISTINCT ON (s.user_id) {_COLUMNS} FROM ecg.duty_shifts s"
        " WHERE s.starts_at <= now() AND s.ends_at > now()"
        "   AND (s.facility_id = $1 OR s.facility_id IN"
        "        (SELECT rc.facility_id FROM ecg.reading_centres rc WHERE rc.serves @> ARRAY[$1]::uuid[]))"
        " ORDER BY s.user_id, s.starts_at",
        facility_id,
    )
    return sorted((_shift(r) for r in rows), key=lambda s: (s.starts_at, s.display_name))
