"""HTTP layer of the gateway's analytics: the internal event intake and the bureau's indicators API."""

from __future__ import annotations

import hmac
from datetime import date
from typing import Any, Literal
from uuid import UUID

from fastapi import APIRouter, Depends, Query, Request
from pydantic import ValidationError

from common.auth import Principal, require_roles
from common.errors import BadRequest, Invalid, Unauthorized
from gateway.analytics import service
from gateway.analytics.indicators import INDICATORS, EventCount, indicator
from gateway.analytics.schemas import EventBatch, EventCounts, EventPage, IndicatorValues, IntakeResult

router = APIRouter(tags=["analytics"])
analyst = require_roles(*service.ANALYTICS_ROLES)

Period = Literal["day", "week", "month"]
FROM = Query(default=None, alias="from", description="first local (Asia/Shanghai) date, inclusive")
TO = Query(default=None, alias="to", description="last local date, inclusive (default: today)")
FACILITY = Query(default=None, description="only this facility and those below it")


@router.post("/internal/events", include_in_schema=False)
async def receive_events(request: Request) -> IntakeResult:
    """Relayed outbox events from a service (internal key required; idempotent per source and event id)."""
    expected: str = request.app.state.settings.internal_api_key
    given = request.headers.get("x-internal-key", "")
    # Constant-time comparison, and the key is checked before the body is even read.
    if not given or not hmac.compare_digest(given.encode(), expected.encode()):
        raise Unauthorized("a valid internal key is required")
    body = await request.body()
    try:
        batch = EventBatch.model_validate_json(body)
    except ValidationError as exc:
        errors = exc.errors()
        if not errors or errors[0]["type"] == "json_invalid":
            raise BadRequest("the request body is not valid JSON") from None
        where = ".".join(str(p) for p in errors[0]["loc"])
        raise Invalid(f"{where}: {errors[0]['msg']}") from None
    return await service.intake(request.app.state.db, batch)


@router.get("/api/analytics/event-counts")
async def event_counts(
    request: Request,
    period: Period = "month",
    first: date | None = FROM,
    last: date | None = TO,
    facility_id: UUID | None = FACILITY,
    event_type: list[str] | None = Query(default=None, description="count only these event types"),
    by_facility: bool = True,
    principal: Principal = Depends(analyst),
) -> EventCounts:
    """Events by type, facility and period (day, ISO week or month in Asia/Shanghai), within your scope."""
    return await service.event_counts(
        request.app.state.db,
        principal,
        period=period,
        first=first,
        last=last,
        facility_id=facility_id,
        event_types=event_type,
        by_facility=by_facility,
    )


@router.get("/api/analytics/indicators")
async def list_indicators(principal: Principal = Depends(analyst)) -> list[dict[str, Any]]:
    """The indicators defined on the platform: numerator and denominator event counts and the factor."""
    return [i.describe() for i in INDICATORS]


@router.get("/api/analytics/indicators/{indicator_id}")
async def indicator_values(
    request: Request,
    indicator_id: str,
    period: Period = "month",
    first: date | None = FROM,
    last: date | None = TO,
    facility_id: UUID | None = FACILITY,
    by_facility: bool = True,
    principal: Principal = Depends(analyst),
) -> IndicatorValues:
    """An indicator's value per period for your scope (facility_id null), and per facility when asked."""
    return await service.indicator_values(
        request.app.state.db,
        principal,
        indicator(indicator_id),
        period=period,
        first=first,
        last=last,
        facility_id=facility_id,
        by_facility=by_facility,
    )


@router.get("/api/analytics/indicators/{indicator_id}/events")
async def indicator_events(
    request: Request,
    indicator_id: str,
    part: Literal["numerator", "denominator"] = "numerator",
    period: str | None = Query(default=None, description="a period id: 20260305, 2026W10 or 202603"),
    first: date | None = FROM,
    last: date | None = TO,
    facility_id: UUID | None = FACILITY,
    after: int = Query(default=0, ge=0, description="the previous page's next_cursor"),
    limit: int = Query(default=100, ge=1, le=1000),
    principal: Principal = Depends(analyst),
) -> EventPage:
    """The events counted in an indicator's numerator or denominator (ids only, no patient identifiers)."""
    ind = indicator(indicator_id)
    count = ind.numerator if part == "numerator" else ind.denominator
    return await service.contributing_events(
        request.app.state.db,
        principal,
        count,
        period=period,
        first=first,
        last=last,
        facility_id=facility_id,
        after=after,
        limit=limit,
    )


@router.get("/api/analytics/events")
async def events(
    request: Request,
    event_type: list[str] | None = Query(default=None),
    period: str | None = Query(default=None, description="a period id: 20260305, 2026W10 or 202603"),
    first: date | None = FROM,
    last: date | None = TO,
    facility_id: UUID | None = FACILITY,
    after: int = Query(default=0, ge=0),
    limit: int = Query(default=100, ge=1, le=1000),
    principal: Principal = Depends(analyst),
) -> EventPage:
    """The events behind an event count (ids only, no patient identifiers)."""
    count = EventCount(tuple(event_type)) if event_type else None
    return await service.contributing_events(
        request.app.state.db,
        principal,
        count,
        period=period,
        first=first,
        last=last,
        facility_id=facility_id,
        after=after,
        limit=limit,
    )
