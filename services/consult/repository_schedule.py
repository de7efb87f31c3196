"""SQL of scheduling: availability windows, their slots, bookings and reminders (caller's transaction)."""

# ruff: noqa: S608  (SQL joins only column-name constants; values are bind parameters)

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any
from uuid import UUID

import asyncpg

from services.consult.schemas import ConsultRow

_AVAILABILITY = ("id, specialist_id, specialist_name, specialist_facility_id, starts_at, ends_at, slot_minutes,"
                 " note, created_at")
_SLOT = "id, availability_id, specialist_id, specialist_name, specialist_facility_id, starts_at, ends_at, booking_id"
_BOOKING = ("id, consult_id, facility_id, target_facility_id, slot_id, specialist_id, specialist_name, starts_at,"
            " ends_at, booked_by, booked_by_name, created_at, released_at, released_by, reminded_24h_at,"
            " reminded_15m_at")


async def overlapping_slots(conn: asyncpg.Connection, specialist_id: UUID, starts_at: datetime,
                            ends_at: datetime) -> int:
    return int(await conn.fetchval(
        "SELECT count(*) FROM consult.slots WHERE specialist_id = $1 AND starts_at < $3 AND ends_at > $2",
        specialist_id, starts_at, ends_at,
    ))


async def insert_availability(conn: asyncpg.Connection, values: dict[str, Any],
                              slots: list[tuple[UUID, datetime, datetime]]) -> asyncpg.Record:
    row = await conn.fetchrow(
        "INSERT INTO consult.availability (id, specialist_id, specialist_name, specialist_facility_id, starts_at,"
        f" ends_at, slot_minutes, note) VALUES ($1, $2, $3, $4, $5, $6, $7, $8) RETURNING {_AVAILABILITY}",
        values["id"], values["specialist_id"], values["specialist_name"], values["specialist_facility_id"],
        values["starts_at"], values["ends_at"], values["slot_minutes"], values["note"],
    )
    assert row is not None
    await conn.executemany(
        "INSERT INTO consult.slots (id, availability_id, specialist_id, specialist_name, specialist_facility_id,"
        " starts_at, ends_at) VALUES ($1, $2, $3, $4, $5, $6, $7)",
        [(sid, row["id"], row["specialist_id"], row["specialist_name"], row["specialist_facility_id"], a, b)
         for sid, a, b in slots],
    )
    return row


async def availability(conn: asyncpg.Connection, availability_id: UUID, *, lock: bool = False) -> asyncpg.Record | None:
    return await conn.fetchrow(
        f"SELECT {_AVAILABILITY} FROM consult.availability WHERE id = $1" + (" FOR UPDATE" if lock else ""),
        availability_id,
    )


async def list_availability(conn: asyncpg.Connection, *, specialist_id: UUID | None, facility_id: UUID | None,
                            since: datetime, until: datetime, limit: int) -> list[asyncpg.Record]:
    return list(await conn.fetch(
        f"SELECT {_AVAILABILITY} FROM consult.availability WHERE ends_at > $1 AND starts_at < $2"
        " AND ($3::uuid IS NULL OR specialist_id = $3) AND ($4::uuid IS NULL OR specialist_facility_id = $4)"
        " ORDER BY starts_at, id LIMIT $5",
        since, until, specialist_id, facility_id, limit,
    ))


async def slots_of(conn: asyncpg.Connection, availability_ids: list[UUID]) -> list[asyncpg.Record]:
    return list(await conn.fetch(
        f"SELECT {_SLOT} FROM consult.slots WHERE availability_id = ANY($1::uuid[]) ORDER BY starts_at",
        availability_ids,
    ))


async def booked_slots(conn: asyncpg.Connection, availability_id: UUID) -> int:
    return int(await conn.fetchval(
        "SELECT count(*) FROM consult.slots WHERE availability_id = $1 AND booking_id IS NOT NULL", availability_id,
    ))


async def delete_availability(conn: asyncpg.Connection, availability_id: UUID) -> bool:
    return await conn.fetchval(
        "DELETE FROM consult.availability WHERE id = $1 RETURNING true", availability_id,
    ) is not None


async def free_slots(conn: asyncpg.Connection, *, specialist_id: UUID | None, facility_id: UUID | None,
                     since: datetime, until: datetime, limit: int) -> list[asyncpg.Record]:
    return list(await conn.fetch(
        f"SELECT {_SLOT} FROM consult.slots WHERE booking_id IS NULL AND starts_at >= $1 AND starts_at < $2"
        " AND ($3::uuid IS NULL OR specialist_id = $3) AND ($4::uuid IS NULL OR specialist_facility_id = $4)"
        " ORDER BY starts_at, specialist_name LIMIT $5",
        since, until, specialist_id, facility_id, limit,
    ))


async def slot(conn: asyncpg.Connection, slot_id: UUID) -> asyncpg.Record | None:
    return await conn.fetchrow(f"SELECT {_SLOT} FROM consult.slots WHERE id = $1", slot_id)


async def take_slot(conn: asyncpg.Connection, slot_id: UUID, booking_id: UUID) -> bool:
    """Mark a free slot taken; False when it is taken already (a racing booking waits here, then loses)."""
    return await conn.fetchval(
        "UPDATE consult.slots SET booking_id = $2 WHERE id = $1 AND booking_id IS NULL RETURNING true",
        slot_id, booking_id,
    ) is not None


async def insert_booking(conn: asyncpg.Connection, c: ConsultRow, s: asyncpg.Record, *, booking_id: UUID,
                         booked_by: UUID, booked_by_name: str) -> asyncpg.Record:
    row = await conn.fetchrow(
        "INSERT INTO consult.bookings (id, consult_id, facility_id, target_facility_id, slot_id, specialist_id,"
        " specialist_name, starts_at, ends_at, booked_by, booked_by_name)"
        f" VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11) RETURNING {_BOOKING}",
        booking_id, c.id, c.facility_id, c.target_facility_id, s["id"], s["specialist_id"], s["specialist_name"],
        s["starts_at"], s["ends_at"], booked_by, booked_by_name,
    )
    assert row is not None
    return row


async def active_booking(conn: asyncpg.Connection, consult_id: UUID, *, lock: bool = False) -> asyncpg.Record | None:
    return await conn.fetchrow(
        f"SELECT {_BOOKING} FROM consult.bookings WHERE consult_id = $1 AND released_at IS NULL"
        + (" FOR UPDATE" if lock else ""),
        consult_id,
    )


async def last_booking(conn: asyncpg.Connection, consult_id: UUID) -> asyncpg.Record | None:
    """The consult's newest booking, active or released (a cancelled consult's calendar shows it)."""
    return await conn.fetchrow(
        f"SELECT {_BOOKING} FROM consult.bookings WHERE consult_id = $1 ORDER BY created_at DESC, id LIMIT 1",
        consult_id,
    )


async def bookings_before(conn: asyncpg.Connection, consult_id: UUID, created_at: datetime) -> int:
    return int(await conn.fetchval(
        "SELECT count(*) FROM consult.bookings WHERE consult_id = $1 AND created_at < $2", consult_id, created_at,
    ))


async def release_booking(conn: asyncpg.Connection, booking: asyncpg.Record, released_by: UUID) -> None:
    """Release a booking and free its slot."""
    await conn.execute(
        "UPDATE consult.bookings SET released_at = clock_timestamp(), released_by = $2 WHERE id = $1", booking["id"],
        released_by,
    )
    if booking["slot_id"] is not None:
        await conn.execute("UPDATE consult.slots SET booking_id = NULL WHERE id = $1 AND booking_id = $2",
                           booking["slot_id"], booking["id"])


async def my_bookings(conn: asyncpg.Connection, user_id: UUID, since: datetime, limit: int) -> list[asyncpg.Record]:
    """Active bookings of consults the user requested, answers, is booked with or takes part in; for a consult
    that ended (cancelled, declined, closed: its booking released) its last booking, to show it cancelled."""
    return list(await conn.fetch(
        f"SELECT {', '.join('b.' + c.strip() for c in _BOOKING.split(','))}, c.status, c.specialty, c.urgency,"
        " c.requester_name, c.consultant_name, c.closed_at,"
        " (SELECT count(*) FROM consult.bookings p WHERE p.consult_id = b.consult_id AND p.created_at < b.created_at)"
        " AS earlier"
        " FROM consult.bookings b JOIN consult.consults c ON c.id = b.consult_id"
        " WHERE (b.released_at IS NULL OR (c.status IN ('cancelled', 'declined', 'closed') AND NOT EXISTS ("
        "   SELECT 1 FROM consult.bookings n WHERE n.consult_id = b.consult_id AND n.created_at > b.created_at)))"
        " AND b.ends_at >= $2"
        " AND (c.requester_id = $1 OR c.consultant_id = $1 OR b.specialist_id = $1 OR EXISTS ("
        "   SELECT 1 FROM consult.participants p WHERE p.consult_id = c.id AND p.user_id = $1"
        "   AND p.removed_at IS NULL))"
        " ORDER BY b.starts_at LIMIT $3",
        user_id, since, limit,
    ))


async def due_reminders(conn: asyncpg.Connection, column: str, lead: timedelta, now: datetime) -> list[asyncpg.Record]:
    """Claim (mark sent) the active bookings of scheduled consults whose reminder ``column`` falls due by
    ``now``; each booking is returned once, ever (the UPDATE is the claim)."""
    if column not in ("reminded_24h_at", "reminded_15m_at"):
        raise ValueError(column)
    return list(await conn.fetch(
        f"UPDATE consult.bookings b SET {column} = $1 FROM consult.consults c"
        f" WHERE c.id = b.consult_id AND c.status = 'scheduled' AND b.released_at IS NULL AND b.{column} IS NULL"
        " AND b.starts_at - $2::interval <= $1 AND b.starts_at > $1"
        " RETURNING b.id, b.consult_id, b.facility_id, b.target_facility_id, b.starts_at, b.specialist_id,"
        " c.requester_id, c.consultant_id",
        now, lead,
    ))
