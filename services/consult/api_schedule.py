"""HTTP layer of scheduling: availability, free slots, booking, calendars (thin; rules in scheduling.py)."""

from __future__ import annotations

from datetime import datetime
from typing import Any
from uuid import UUID

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import Response

from common.auth import Principal, current_principal
from common.db import Database
from services.consult import ical, scheduling
from services.consult.scheduling import Availability, AvailabilityIn, AvailabilityList, Booking, BookingIn, SlotList

router = APIRouter(prefix="/api/consult", tags=["consult scheduling"])
ICS: dict[int | str, dict[str, Any]] = {200: {"content": {"text/calendar": {}}}}


def _db(request: Request) -> Database:
    db: Database = request.app.state.db
    return db


def _ics(body: bytes, filename: str) -> Response:
    return Response(body, media_type=ical.MEDIA_TYPE, headers={
        "Content-Disposition": f'attachment; filename="{filename}"', "Cache-Control": "no-store"})


@router.post("/availability", status_code=201, response_model=Availability)
async def publish_availability(
    body: AvailabilityIn, request: Request, principal: Principal = Depends(current_principal)
) -> Availability:
    """A specialist opens a window (``starts_at``–``ends_at``, with offset) at their own facility, split into
    slots of ``slot_minutes``; 409 ``overlap`` when it overlaps one already published."""
    return await scheduling.publish(_db(request), principal, body)


@router.get("/availability", response_model=AvailabilityList)
async def list_availability(
    request: Request,
    specialist_id: UUID | None = Query(default=None),
    facility_id: UUID | None = Query(default=None),
    since: datetime | None = Query(default=None, alias="from"),
    until: datetime | None = Query(default=None, alias="to"),
    principal: Principal = Depends(current_principal),
) -> AvailabilityList:
    """Published windows with their slots (``free`` or not): a specialist's, a facility's, default your own."""
    return await scheduling.list_availability(_db(request), principal, specialist_id=specialist_id,
                                              facility_id=facility_id, since=since, until=until)


@router.delete("/availability/{availability_id}", status_code=204)
async def withdraw_availability(
    availability_id: UUID, request: Request, principal: Principal = Depends(current_principal)
) -> Response:
    """Withdraw a window (the specialist who published it; 409 ``slot_booked`` while a slot is booked)."""
    await scheduling.withdraw(_db(request), principal, availability_id)
    return Response(status_code=204)


@router.get("/slots", response_model=SlotList)
async def free_slots(
    request: Request,
    consult_id: UUID | None = Query(default=None, description="the consult's consultant (else target facility)"),
    specialist_id: UUID | None = Query(default=None),
    facility_id: UUID | None = Query(default=None),
    since: datetime | None = Query(default=None, alias="from"),
    until: datetime | None = Query(default=None, alias="to"),
    principal: Principal = Depends(current_principal),
) -> SlotList:
    """Free slots from now on (of a consult's consultant, a specialist or a facility)."""
    return await scheduling.free_slots(_db(request), principal, consult_id=consult_id, specialist_id=specialist_id,
                                       facility_id=facility_id, since=since, until=until)


@router.post("/consults/{consult_id}/booking", status_code=201, response_model=Booking)
async def book(
    consult_id: UUID, body: BookingIn, request: Request, principal: Principal = Depends(current_principal)
) -> Booking:
    """Book a free slot for an accepted consult (→ scheduled) or move a scheduled one (reschedule: the old
    slot is released). 409 ``slot_taken`` when the slot is booked already."""
    return await scheduling.book(_db(request), principal, consult_id, body)


@router.get("/consults/{consult_id}/booking", response_model=Booking)
async def get_booking(consult_id: UUID, request: Request, principal: Principal = Depends(current_principal)) -> Booking:
    """The consult's current booking (404 while it is not scheduled)."""
    return await scheduling.current_booking(_db(request), principal, consult_id)


@router.get("/consults/{consult_id}/calendar.ics", responses=ICS)
async def consult_calendar(
    consult_id: UUID, request: Request, principal: Principal = Depends(current_principal)
) -> Response:
    """The consult's booking as iCalendar (RFC 5545; no patient name)."""
    body = await scheduling.consult_calendar(_db(request), principal, consult_id)
    return _ics(body, f"consult-{consult_id}.ics")


@router.get("/calendar.ics", responses=ICS)
async def my_calendar(request: Request, principal: Principal = Depends(current_principal)) -> Response:
    """Your booked consults (as requester, consultant or participant) as iCalendar."""
    return _ics(await scheduling.my_calendar(_db(request), principal), "consults.ics")
