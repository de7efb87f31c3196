"""Bookings as iCalendar (RFC 5545) with the ``icalendar`` library, for the doctors' own calendar apps.

One VEVENT per consult (UID ``consult-<id>@<domain>``, so a rescheduled consult replaces its event in the
client: SEQUENCE counts the bookings before this one). Times are written in Asia/Shanghai with the
VTIMEZONE the RFC asks for (clients show local time without guessing); DTSTAMP in UTC. The SUMMARY and
DESCRIPTION never name the patient: a calendar leaves the platform's walls (phones, shared calendars).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from uuid import UUID
from zoneinfo import ZoneInfo

from icalendar import Calendar, Event

LOCAL_TZ = ZoneInfo("Asia/Shanghai")
PRODID = "-//Regional Tele-Health Cloud//Consult//ZH"
UID_DOMAIN = "consult.telehealth"
MEDIA_TYPE = "text/calendar; charset=utf-8"


@dataclass(frozen=True)
class CalendarEntry:
    """What a booking's event shows: ids, times and doctors, never the patient."""

    consult_id: UUID
    booking_id: UUID
    starts_at: datetime
    ends_at: datetime
    specialty: str
    urgency: str
    consultant_name: str
    requester_name: str
    sequence: int = 0
    cancelled: bool = False
    url: str | None = None


def event_uid(consult_id: UUID) -> str:
    return f"consult-{consult_id}@{UID_DOMAIN}"


def summary(entry: CalendarEntry) -> str:
    what = entry.specialty or "会诊"
    return f"远程会诊 Remote consultation · {what}"


def booking_event(entry: CalendarEntry, stamp: datetime) -> Event:
    """The VEVENT of one booking."""
    if entry.starts_at.tzinfo is None or entry.ends_at.tzinfo is None:
        raise ValueError("booking times must be timezone-aware")
    event = Event()
    event.add("uid", event_uid(entry.consult_id))
    event.add("dtstamp", stamp.astimezone(UTC))
    event.add("dtstart", entry.starts_at.astimezone(LOCAL_TZ))
    event.add("dtend", entry.ends_at.astimezone(LOCAL_TZ))
    event.add("summary", summary(entry))
    lines = [
        f"会诊专家 Consultant: {entry.consultant_name or '—'}",
        f"申请医生 Requested by: {entry.requester_name or '—'}",
        f"紧急程度 Urgency: {entry.urgency}",
        f"会诊编号 Consult: {entry.consult_id}",
    ]
    event.add("description", "\n".join(lines))
    event.add("sequence", entry.sequence)
    event.add("status", "CANCELLED" if entry.cancelled else "CONFIRMED")
    event.add("transp", "OPAQUE")
    event.add("categories", ["CONSULT"])
    if entry.url:
        event.add("url", entry.url)
    return event


def calendar(entries: Iterable[CalendarEntry], *, name: str, now: datetime | None = None) -> bytes:
    """A VCALENDAR (bytes, CRLF line endings, folded) of ``entries`` with the VTIMEZONE they use."""
    stamp = now or datetime.now(UTC)
    cal = Calendar()
    cal.add("prodid", PRODID)
    cal.add("version", "2.0")
    cal.add("calscale", "GREGORIAN")
    cal.add("method", "PUBLISH")
    cal.add("x-wr-calname", name)
    cal.add("x-wr-timezone", str(LOCAL_TZ))
    for entry in entries:
        cal.add_component(booking_event(entry, stamp))
    cal.add_missing_timezones()
    return bytes(cal.to_ical())
