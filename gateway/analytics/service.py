"""Analytics rules: who sees which facilities, periods, indicator arithmetic, the event intake."""

from __future__ import annotations

from datetime import date
from typing import Any
from uuid import UUID

from common.auth import Principal, Role
from common.db import Database
from common.errors import Forbidden, Invalid, NotFound
from common.events import scrub_payload
from common.services import SERVICES
from gateway.analytics import repository as repo
from gateway.analytics.indicators import EventCount, Indicator
from gateway.analytics.periods import PeriodType, local_midnight, next_start, parse_period_id, period_id, resolve_range
from gateway.analytics.schemas import (
    CountRow,
    EventBatch,
    EventCounts,
    EventPage,
    EventRef,
    IndicatorRow,
    IndicatorValues,
    IntakeResult,
)

SOURCES = frozenset({spec.name for spec in SERVICES} | {"gateway"})
ANALYTICS_ROLES = (Role.BUREAU_ANALYST, Role.PLATFORM_ADMIN, Role.FACILITY_ADMIN)


async def intake(db: Database, batch: EventBatch) -> IntakeResult:
    """Store a relayed batch; events seen before (same source and id) are ignored."""
    if batch.source not in SOURCES:
        raise Invalid(f"unknown event source {batch.source!r}")
    events = [e.model_copy(update={"payload": scrub_payload(e.payload)}) for e in batch.events]
    async with db.transaction() as conn:
        accepted = await repo.insert_events(conn, batch.source, events)
    return IntakeResult(accepted=accepted, duplicates=len(events) - accepted)


async def _scope(db: Database, principal: Principal, facility_id: UUID | None) -> list[UUID] | None:
    """The facilities whose events the caller may count (None: all), narrowed to ``facility_id``'s subtree.

    Platform admins see everything; a bureau analyst sees the region's tree; a facility admin their own
    facility and what lies below it.
    """
    async with db.transaction(principal) as conn:
        allowed: list[UUID] | None
        if principal.has_role(Role.PLATFORM_ADMIN):
            allowed = None
        elif principal.has_role(Role.BUREAU_ANALYST):
            allowed = await repo.facility_subtree(conn, principal.region_id or principal.facility_id)
        elif principal.has_role(Role.FACILITY_ADMIN):
            allowed = await repo.facility_subtree(conn, principal.facility_id)
        else:
            raise Forbidden("analytics are open to bureau analysts and administrators")
        if facility_id is None:
            return allowed
        if allowed is not None and facility_id not in allowed:
            raise Forbidden("that facility is outside your scope")
        narrowed = await repo.facility_subtree(conn, facility_id)
        if not narrowed:
            raise NotFound("no such facility")
        return narrowed


async def _names(db: Database, ids: set[UUID | None]) -> dict[UUID, tuple[str, str]]:
    real = [i for i in ids if i is not None]
    if not real:
        return {}
    async with db.transaction() as conn:
        return await repo.facility_names(conn, real)


def ratio(numerator: int, denominator: int, factor: int) -> float | None:
    return round(numerator / denominator * factor, 2) if denominator else None


async def event_counts(
    db: Database,
    principal: Principal,
    *,
    period: PeriodType,
    first: date | None,
    last: date | None,
    facility_id: UUID | None,
    event_types: list[str] | None,
    by_facility: bool,
) -> EventCounts:
    facilities = await _scope(db, principal, facility_id)
    start, end = resolve_range(period, first, last)
    async with db.transaction(principal) as conn:
        rows = await repo.count_events(
            conn,
            period=period,
            start=local_midnight(start),
            end=local_midnight(end),
            facilities=facilities,
            event_types=event_types or None,
            by_facility=by_facility,
        )
    names = await _names(db, {r["facility_id"] for r in rows})
    return EventCounts(
        period_type=period,
        start=start,
        end=end,
        rows=[
            CountRow(
                period=period_id(r["start"], period),
                start=r["start"],
                event_type=r["event_type"],
                facility_id=r["facility_id"],
                facility_name=names.get(r["facility_id"], (None,))[0],
                count=r["n"],
            )
            for r in rows
        ],
    )


async def indicator_values(
    db: Database,
    principal: Principal,
    ind: Indicator,
    *,
    period: PeriodType,
    first: date | None,
    last: date | None,
    facility_id: UUID | None,
    by_facility: bool,
) -> IndicatorValues:
    """Totals for the caller's scope in every period (zeros included), and per facility when asked."""
    facilities = await _scope(db, principal, facility_id)
    start, end = resolve_range(period, first, last)
    async with db.transaction(principal) as conn:

        async def counts(per_facility: bool) -> list[Any]:
            return await repo.indicator_counts(
                conn,
                period=period,
                start=local_midnight(start),
                end=local_midnight(end),
                facilities=facilities,
                numerator=ind.numerator,
                denominator=ind.denominator,
                by_facility=per_facility,
            )

        totals = {r["start"]: r for r in await counts(False)}
        detail = await counts(True) if by_facility else []
    rows: list[IndicatorRow] = []
    cursor = start
    while cursor < end:
        r = totals.get(cursor)
        num, den = (r["numerator"], r["denominator"]) if r else (0, 0)
        rows.append(
            IndicatorRow(
                period=period_id(cursor, period),
                start=cursor,
                facility_id=None,
                numerator=num,
                denominator=den,
                value=ratio(num, den, ind.factor),
            )
        )
        cursor = next_start(cursor, period)
    names = await _names(db, {r["facility_id"] for r in detail})
    rows.extend(
        IndicatorRow(
            period=period_id(r["start"], period),
            start=r["start"],
            facility_id=r["facility_id"],
            facility_name=names.get(r["facility_id"], (None,))[0],
            numerator=r["numerator"],
            denominator=r["denominator"],
            value=ratio(r["numerator"], r["denominator"], ind.factor),
        )
        for r in detail
        if r["numerator"] or r["denominator"]
    )
    return IndicatorValues(indicator=ind.describe(), period_type=period, start=start, end=end, rows=rows)


def window(period: str | None, first: date | None, last: date | None) -> tuple[date, date]:
    """A drill-down window: one DHIS2 period id, or an inclusive local date range."""
    if period:
        _, start, end = parse_period_id(period)
        return start, end
    if first is None or last is None:
        raise Invalid("give a 'period' (20260305, 2026W10, 202603) or both 'from' and 'to'")
    if first > last:
        raise Invalid("'from' must not be after 'to'")
    return first, next_start(last, "day")


async def contributing_events(
    db: Database,
    principal: Principal,
    count: EventCount | None,
    *,
    period: str | None,
    first: date | None,
    last: date | None,
    facility_id: UUID | None,
    after: int,
    limit: int,
) -> EventPage:
    """The events a number was made of, so a dashboard figure can be traced; never patient identities."""
    facilities = await _scope(db, principal, facility_id)
    start, end = window(period, first, last)
    async with db.transaction(principal) as conn:
        rows = await repo.list_events(
            conn,
            start=local_midnight(start),
            end=local_midnight(end),
            facilities=facilities,
            count=count,
            after=after,
            limit=limit + 1,
        )
    more = len(rows) > limit
    rows = rows[:limit]
    events = [
        EventRef(
            event_id=r["event_id"],
            source=r["source"],
            event_type=r["event_type"],
            facility_id=r["facility_id"],
            occurred_at=r["occurred_at"],
            subject_type=r["subject_type"],
            # A patient as subject is a person: its id is not shown to aggregate viewers.
            subject_id=None if r["subject_type"] == "patient" else r["subject_id"],
        )
        for r in rows
    ]
    return EventPage(events=events, next_cursor=rows[-1]["id"] if more and rows else None)
