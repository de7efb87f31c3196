"""All SQL of the gateway's analytics (gateway.analytics_events, reading gateway.facilities)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from uuid import UUID

import asyncpg
import orjson

from gateway.analytics.indicators import EventCount
from gateway.analytics.schemas import EventIn

# Periods are cut in local time: a report signed at 23:30 in Shanghai counts on that Shanghai day.
_LOCAL_START = "date_trunc($1, occurred_at AT TIME ZONE 'Asia/Shanghai')::date"
_SCOPE = "($4::uuid[] IS NULL OR facility_id = ANY($4::uuid[]))"


async def insert_events(conn: asyncpg.Connection, source: str, events: Sequence[EventIn]) -> int:
    """Insert what is new; returns how many were new (the rest were seen before)."""
    if not events:
        return 0
    rows = await conn.fetch(
        """
        INSERT INTO gateway.analytics_events
            (source, event_id, event_type, facility_id, subject_type, subject_id, payload, occurred_at)
        SELECT $1, e.event_id, e.event_type, e.facility_id, e.subject_type, e.subject_id, e.payload::jsonb,
               e.occurred_at
        FROM unnest($2::uuid[], $3::text[], $4::uuid[], $5::text[], $6::text[], $7::text[], $8::timestamptz[])
             AS e(event_id, event_type, facility_id, subject_type, subject_id, payload, occurred_at)
        ON CONFLICT (source, event_id) DO NOTHING
        RETURNING event_id
        """,
        source,
        [e.id for e in events],
        [e.event_type for e in events],
        [e.facility_id for e in events],
        [e.subject_type for e in events],
        [e.subject_id for e in events],
        [orjson.dumps(e.payload).decode() for e in events],
        [e.occurred_at for e in events],
    )
    return len(rows)


async def facility_subtree(conn: asyncpg.Connection, root: UUID) -> list[UUID]:
    """``root`` and every facility below it in the tree."""
    rows = await conn.fetch(
        """
        WITH RECURSIVE sub(id) AS (
            SELECT id FROM gateway.facilities WHERE id = $1
            UNION
            SELECT f.id FROM gateway.facilities f JOIN sub ON f.parent_id = sub.id
        )
        SELECT id FROM sub
        """,
        root,
    )
    return [r["id"] for r in rows]


async def facility_names(conn: asyncpg.Connection, ids: Sequence[UUID]) -> dict[UUID, tuple[str, str]]:
    rows = await conn.fetch("SELECT id, name_zh, name_en FROM gateway.facilities WHERE id = ANY($1::uuid[])", list(ids))
    return {r["id"]: (r["name_zh"], r["name_en"]) for r in rows}


async def count_events(
    conn: asyncpg.Connection,
    *,
    period: str,
    start: datetime,
    end: datetime,
    facilities: list[UUID] | None,
    event_types: list[str] | None,
    by_facility: bool,
) -> list[asyncpg.Record]:
    facility = "facility_id" if by_facility else "NULL::uuid"
    rows: list[asyncpg.Record] = await conn.fetch(
        f"""
        SELECT {_LOCAL_START} AS start, event_type, {facility} AS facility_id, count(*) AS n
        FROM gateway.analytics_events
        WHERE occurred_at >= $2 AND occurred_at < $3 AND {_SCOPE}
          AND ($5::text[] IS NULL OR event_type = ANY($5::text[]))
        GROUP BY 1, 2, 3
        ORDER BY 1, 2, 3 NULLS FIRST
        """,
        period,
        start,
        end,
        facilities,
        event_types,
    )
    return rows


async def indicator_counts(
    conn: asyncpg.Connection,
    *,
    period: str,
    start: datetime,
    end: datetime,
    facilities: list[UUID] | None,
    numerator: EventCount,
    denominator: EventCount,
    by_facility: bool,
) -> list[asyncpg.Record]:
    """Numerator and denominator per period (and facility, when ``by_facility``)."""
    facility = "facility_id" if by_facility else "NULL::uuid"
    rows: list[asyncpg.Record] = await conn.fetch(
        f"""
        SELECT {_LOCAL_START} AS start, {facility} AS facility_id,
               count(*) FILTER (WHERE event_type = ANY($5::text[]) AND payload @> $6::text::jsonb) AS numerator,
               count(*) FILTER (WHERE event_type = ANY($7::text[]) AND payload @> $8::text::jsonb) AS denominator
        FROM gateway.analytics_events
        WHERE occurred_at >= $2 AND occurred_at < $3 AND {_SCOPE}
          AND event_type = ANY($5::text[] || $7::text[])
        GROUP BY 1, 2
        ORDER BY 1, 2 NULLS FIRST
        """,
        period,
        start,
        end,
        facilities,
        list(numerator.event_types),
        orjson.dumps(numerator.where).decode(),
        list(denominator.event_types),
        orjson.dumps(denominator.where).decode(),
    )
    return rows


async def list_events(
    conn: asyncpg.Connection,
    *,
    start: datetime,
    end: datetime,
    facilities: list[UUID] | None,
    count: EventCount | None,
    after: int,
    limit: int,
) -> list[asyncpg.Record]:
    """The events behind a number, oldest first, keyset-paged by row id. No payloads: ids only."""
    types = list(count.event_types) if count else None
    where = orjson.dumps(count.where if count else {}).decode()
    rows: list[asyncpg.Record] = await conn.fetch(
        """
        SELECT id, source, event_id, event_type, facility_id, subject_type, subject_id, occurred_at
        FROM gateway.analytics_events
        WHERE occurred_at >= $2 AND occurred_at < $3
          AND ($4::uuid[] IS NULL OR facility_id = ANY($4::uuid[]))
          AND ($1::text[] IS NULL OR event_type = ANY($1::text[])) AND payload @> $5::text::jsonb
          AND id > $6
        ORDER BY id
        LIMIT $7
        """,
        types,
        start,
        end,
        facilities,
        where,
        after,
        limit,
    )
    return rows
