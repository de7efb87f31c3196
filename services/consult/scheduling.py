"""Scheduling (docs/consult.md "Scheduling"): specialists publish availability, split into slots; the
requesting side books a free slot for an accepted consult (``schedule``) or moves it (``reschedule``, which
releases the old slot); reminders 24 h and 15 min before; the bookings as iCalendar (ical.py).

A slot is booked once. The booking transaction first marks the slot taken with a conditional UPDATE (a racing
booking waits on the row lock, then finds it taken: 409 ``slot_taken``), and the partial unique index
``bookings_slot_once`` refuses a second active booking of a slot whatever the path.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import UUID

import asyncpg
from pydantic import BaseModel, ConfigDict, Field

from common.audit import AuditEntry, write
from common.auth import Principal, Role
from common.db import Database
from common.errors import Conflict, Forbidden, Invalid, NotFound
from common.events import record_event
from services.consult import access, ical
from services.consult import repository_schedule as repo
from services.consult.schemas import ConsultRow
from services.consult.service import transition
from services.consult.states import FINAL

MAX_SLOTS_PER_WINDOW = 96
MAX_WINDOW_DAYS_AHEAD = 180
REMINDERS: tuple[tuple[str, str, timedelta], ...] = (
    ("24h", "reminded_24h_at", timedelta(hours=24)),
    ("15m", "reminded_15m_at", timedelta(minutes=15)),
)


class AvailabilityIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    starts_at: datetime
    ends_at: datetime
    slot_minutes: int = Field(default=30, ge=5, le=240)
    note: str = Field(default="", max_length=200)


class Slot(BaseModel):
    id: UUID
    availability_id: UUID
    specialist_id: UUID
    specialist_name: str
    specialist_facility_id: UUID
    starts_at: datetime
    ends_at: datetime
    free: bool


class Availability(BaseModel):
    id: UUID
    specialist_id: UUID
    specialist_name: str
    specialist_facility_id: UUID
    starts_at: datetime
    ends_at: datetime
    slot_minutes: int
    note: str
    created_at: datetime
    slots: list[Slot]


class AvailabilityList(BaseModel):
    items: list[Availability]


class SlotList(BaseModel):
    items: list[Slot]


class BookingIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    slot_id: UUID


class Booking(BaseModel):
    id: UUID
    consult_id: UUID
    slot_id: UUID | None
    specialist_id: UUID
    specialist_name: str
    starts_at: datetime
    ends_at: datetime
    booked_by: UUID
    booked_by_name: str
    created_at: datetime


def _slot(row: Any) -> Slot:
    data = dict(row)
    return Slot(**{k: v for k, v in data.items() if k != "booking_id"}, free=data["booking_id"] is None)


def _booking(row: Any) -> Booking:
    return Booking(**{k: row[k] for k in Booking.model_fields})


def split(starts_at: datetime, ends_at: datetime, minutes: int) -> list[tuple[datetime, datetime]]:
    """The whole slots of ``minutes`` in the window (a remainder shorter than a slot is left out)."""
    step = timedelta(minutes=minutes)
    out, t = [], starts_at
    while t + step <= ends_at:
        out.append((t, t + step))
        t += step
    return out


def _aware(t: datetime, name: str) -> datetime:
    if t.tzinfo is None:
        raise Invalid(f"{name}: give a time with its offset (e.g. 2026-03-01T09:00:00+08:00)")
    return t.astimezone(UTC)


def _audit(principal: Principal, action: str, object_type: str, object_id: UUID, **detail: Any) -> AuditEntry:
    return AuditEntry.for_principal(
        principal, source="consult", action=f"consult.{action}", outcome="success", object_type=object_type,
        object_id=str(object_id), detail={k: str(v) for k, v in detail.items()},
    )


async def publish(db: Database, principal: Principal, body: AvailabilityIn) -> Availability:
    """A specialist opens a window at their own facility, split into slots of ``slot_minutes``."""
    if not principal.has_role(Role.SPECIALIST):
        raise Forbidden("publishing availability needs the specialist role")
    starts, ends = _aware(body.starts_at, "starts_at"), _aware(body.ends_at, "ends_at")
    now = datetime.now(UTC)
    if ends <= starts:
        raise Invalid("ends_at must be after starts_at")
    if starts < now - timedelta(minutes=1) or starts > now + timedelta(days=MAX_WINDOW_DAYS_AHEAD):
        raise Invalid(f"the window must start in the next {MAX_WINDOW_DAYS_AHEAD} days")
    pieces = split(starts, ends, body.slot_minutes)
    if not pieces:
        raise Invalid("the window is shorter than one slot")
    if len(pieces) > MAX_SLOTS_PER_WINDOW:
        raise Invalid(f"at most {MAX_SLOTS_PER_WINDOW} slots per window: publish a shorter one")
    async with db.transaction(principal) as conn:
        # one window at a time per specialist: overlapping windows would double-book the doctor
        await conn.execute("SELECT pg_advisory_xact_lock(hashtext('consult.availability:' || $1))",
                           str(principal.user_id))
        if await repo.overlapping_slots(conn, principal.user_id, starts, ends):
            raise Conflict("this window overlaps availability you already published", code="overlap")
        row = await repo.insert_availability(conn, {
            "id": uuid.uuid4(), "specialist_id": principal.user_id, "specialist_name": principal.display_name,
            "specialist_facility_id": principal.facility_id, "starts_at": starts, "ends_at": ends,
            "slot_minutes": body.slot_minutes, "note": body.note,
        }, [(uuid.uuid4(), a, b) for a, b in pieces])
        slots = await repo.slots_of(conn, [row["id"]])
        await write(conn, _audit(principal, "availability.publish", "consult_availability", row["id"],
                                 slots=len(slots)))
    return Availability(**dict(row), slots=[_slot(s) for s in slots])


async def list_availability(db: Database, principal: Principal, *, specialist_id: UUID | None,
                            facility_id: UUID | None, since: datetime | None, until: datetime | None,
                            limit: int = 100) -> AvailabilityList:
    """Windows with their slots (free or not); default: the caller's own."""
    if not principal.is_clinical:
        raise Forbidden("availability is open to clinical roles")
    if specialist_id is None and facility_id is None:
        specialist_id = principal.user_id
    start = _aware(since, "from") if since else datetime.now(UTC) - timedelta(days=1)
    end = _aware(until, "to") if until else start + timedelta(days=60)
    async with db.transaction(principal) as conn:
        rows = await repo.list_availability(conn, specialist_id=specialist_id, facility_id=facility_id,
                                            since=start, until=end, limit=max(1, min(limit, 500)))
        slots = await repo.slots_of(conn, [r["id"] for r in rows])
    by_window: dict[UUID, list[Slot]] = {}
    for s in slots:
        by_window.setdefault(s["availability_id"], []).append(_slot(s))
    return AvailabilityList(items=[Availability(**dict(r), slots=by_window.get(r["id"], [])) for r in rows])


async def withdraw(db: Database, principal: Principal, availability_id: UUID) -> None:
    """The specialist withdraws a window (409 while one of its slots is booked)."""
    async with db.transaction(principal) as conn:
        row = await repo.availability(conn, availability_id, lock=True)
        # another facility's window answers like a missing one
        if row is None or row["specialist_facility_id"] not in principal.visible_facility_ids:
            raise NotFound("no such availability")
        if row["specialist_id"] != principal.user_id:
            raise Forbidden("only the specialist who published it withdraws a window")
        if await repo.booked_slots(conn, availability_id):
            raise Conflict("a slot of this window is booked: reschedule that consult first", code="slot_booked")
        await repo.delete_availability(conn, availability_id)
        await write(conn, _audit(principal, "availability.withdraw", "consult_availability", availability_id))


async def free_slots(db: Database, principal: Principal, *, consult_id: UUID | None, specialist_id: UUID | None,
                     facility_id: UUID | None, since: datetime | None, until: datetime | None,
                     limit: int = 200) -> SlotList:
    """Free slots of a specialist or a facility; with ``consult_id``: of its consultant (else its target
    facility)."""
    if not principal.is_clinical:
        raise Forbidden("slots are open to clinical roles")
    start = max(_aware(since, "from") if since else datetime.now(UTC), datetime.now(UTC))
    end = _aware(until, "to") if until else start + timedelta(days=30)
    async with db.transaction(principal) as conn:
        if consult_id is not None:
            consult = await access.visible_consult(conn, principal, consult_id)
            specialist_id = consult.consultant_id
            facility_id = None if specialist_id else consult.target_facility_id
        if specialist_id is None and facility_id is None:
            raise Invalid("name a consult_id, specialist_id or facility_id")
        rows = await repo.free_slots(conn, specialist_id=specialist_id, facility_id=facility_id, since=start,
                                     until=end, limit=max(1, min(limit, 500)))
    return SlotList(items=[_slot(r) for r in rows])


def _check_slot(consult: ConsultRow, slot: Any, now: datetime) -> None:
    if slot["specialist_facility_id"] != consult.target_facility_id:
        raise Invalid("the slot belongs to another facility than the one consulted")
    if consult.consultant_id is not None and slot["specialist_id"] != consult.consultant_id:
        raise Invalid("the slot belongs to another specialist than the consult's consultant")
    if slot["starts_at"] <= now:
        raise Invalid("the slot has already begun")


async def book(db: Database, principal: Principal, consult_id: UUID, body: BookingIn) -> Booking:
    """Book a free slot: ``schedule`` for an accepted consult, ``reschedule`` (old slot released) for a
    scheduled one. 409 ``slot_taken`` when someone else has it."""
    now = datetime.now(UTC)
    async with db.transaction(principal) as conn:
        consult = await access.visible_consult(conn, principal, consult_id, lock=True)
        slot = await repo.slot(conn, body.slot_id)
        if slot is None:
            raise NotFound("no such slot")
        current = await repo.active_booking(conn, consult_id, lock=True)
        if current is not None and current["slot_id"] == body.slot_id:
            raise Conflict("the consult is already booked in this slot", code="already_booked")
        action = "reschedule" if consult.status == "scheduled" else "schedule"
        booking_id = uuid.uuid4()
        _check_slot(consult, slot, now)
        await transition(conn, principal, consult, action, slot_id=str(body.slot_id), starts_at=slot["starts_at"])
        if current is not None:
            await repo.release_booking(conn, current, principal.user_id)
        if not await repo.take_slot(conn, body.slot_id, booking_id):
            raise Conflict("the slot was booked by someone else: choose another", code="slot_taken")
        try:
            row = await repo.insert_booking(conn, consult, slot, booking_id=booking_id, booked_by=principal.user_id,
                                            booked_by_name=principal.display_name)
        except asyncpg.UniqueViolationError as exc:
            raise Conflict("the slot was booked by someone else: choose another", code="slot_taken") from exc
        await write(conn, _audit(principal, f"booking.{action}", "consult", consult_id, booking_id=booking_id,
                                 slot_id=body.slot_id))
    return _booking(row)


def called_off(status: str, closed_at: datetime | None, starts_at: datetime) -> bool:
    """Whether a booking's calendar event is CANCELLED: the consult was cancelled or declined, or closed before
    the booked time (the meeting will not take place; its slot was released)."""
    if status in ("cancelled", "declined"):
        return True
    return status == "closed" and closed_at is not None and closed_at < starts_at


async def current_booking(db: Database, principal: Principal, consult_id: UUID) -> Booking:
    async with db.transaction(principal) as conn:
        await access.visible_consult(conn, principal, consult_id)
        row = await repo.active_booking(conn, consult_id)
    if row is None:
        raise NotFound("this consult is not scheduled")
    return _booking(row)


async def consult_calendar(db: Database, principal: Principal, consult_id: UUID) -> bytes:
    """The consult's booking as iCalendar (404 while it has none)."""
    async with db.transaction(principal) as conn:
        consult = await access.visible_consult(conn, principal, consult_id)
        row = await repo.active_booking(conn, consult_id)
        if row is None and consult.status in FINAL:
            row = await repo.last_booking(conn, consult_id)  # released when the consult ended
        if row is None:
            raise NotFound("this consult is not scheduled")
        earlier = await repo.bookings_before(conn, consult_id, row["created_at"])
    entry = ical.CalendarEntry(
        consult_id=consult.id, booking_id=row["id"], starts_at=row["starts_at"], ends_at=row["ends_at"],
        specialty=consult.specialty, urgency=consult.urgency,
        consultant_name=consult.consultant_name or row["specialist_name"], requester_name=consult.requester_name,
        sequence=earlier, cancelled=called_off(consult.status, consult.closed_at, row["starts_at"]),
    )
    return ical.calendar([entry], name="远程会诊 Consult")


async def my_calendar(db: Database, principal: Principal) -> bytes:
    """The caller's bookings (requester, consultant or participant) from 30 days back, as iCalendar."""
    if not principal.is_clinical:
        raise Forbidden("calendars are open to clinical roles")
    async with db.transaction(principal) as conn:
        rows = await repo.my_bookings(conn, principal.user_id, datetime.now(UTC) - timedelta(days=30), 500)
    entries = [ical.CalendarEntry(
        consult_id=r["consult_id"], booking_id=r["id"], starts_at=r["starts_at"], ends_at=r["ends_at"],
        specialty=r["specialty"], urgency=r["urgency"], consultant_name=r["consultant_name"] or r["specialist_name"],
        requester_name=r["requester_name"], sequence=int(r["earlier"]),
        cancelled=called_off(r["status"], r["closed_at"], r["starts_at"]),
    ) for r in rows]
    return ical.calendar(entries, name="我的远程会诊 My consults")


async def send_reminders(db: Database, principal: Principal, now: datetime | None = None) -> dict[str, int]:
    """Record ``consult.reminder`` events (24 h and 15 min before each booked slot), each once: the UPDATE
    that marks a reminder sent is its claim. A 24 h reminder that falls due after the 15 min one (a booking
    made at short notice) is marked and skipped."""
    at = now or datetime.now(UTC)
    counts = {"24h": 0, "15m": 0, "skipped": 0}
    async with db.transaction(principal) as conn:
        for lead, column, delta in REMINDERS:
            for b in await repo.due_reminders(conn, column, delta, at):
                if lead == "24h" and b["starts_at"] - at <= timedelta(minutes=15):
                    counts["skipped"] += 1
                    continue
                recipients = sorted({str(u) for u in (b["requester_id"], b["consultant_id"], b["specialist_id"])
                                     if u is not None})
                await record_event(
                    conn, "consult", "consult.reminder", facility_id=b["facility_id"], subject_type="consult",
                    subject_id=b["consult_id"],
                    payload={"consult_id": str(b["consult_id"]), "booking_id": str(b["id"]), "lead": lead,
                             "starts_at": b["starts_at"].astimezone(UTC).isoformat(), "recipients": recipients,
                             "target_facility_id": str(b["target_facility_id"])},
                )
                counts[lead] += 1
    return counts
