"""The reading centre's duty roster (值班表): who reads critical values (危急值) right now.

A shift belongs to the facility of whoever puts it on the roster: the reading facility. Who may do what:

- a specialist puts themselves on duty (``user_id`` left out, or their own) and takes themselves off;
- a facility_admin schedules any active specialist of their own facility, and takes anyone off. The ECG
  service keeps no user register: the person is looked up with the gateway's user administration API, with
  the admin's own token, so the gateway decides who is "of their facility" exactly as it does for admins;
- the facility's staff (clinical roles, facility_admin) read the roster; ``GET /api/ecg/duty/now`` also tells
  a township who is on duty at the reading centre that reads for it.

Which reading centre reads for a recording's facility: the ECG service only ever sees that relationship in
the access tokens the gateway signs (``serves``: the facilities whose reading centre the user's facility is,
with their descendants). Every time a reading centre's staff use the roster or open the alert feed, their
facility's ``serves`` is remembered in ``ecg.reading_centres`` (repository_duty.learn_reading_centre), and
the analysis task (which has no user token) asks that table at alert time: no call to the gateway on the
path a critical value takes, and the same relationship that decides who may *see* the alert.
"""

from __future__ import annotations

import logging
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import UUID

import asyncpg
import httpx

from common.audit import AuditEntry, write
from common.auth import Principal, Role, system_principal
from common.config import platform_settings
from common.db import Database
from common.errors import Conflict, Forbidden, Invalid, NotFound, Unavailable
from services.ecg import repository_duty as repo
from services.ecg.schemas import DutyList, DutyNow, DutyShift, DutyShiftIn
from services.ecg.settings import EcgSettings, ecg_settings

log = logging.getLogger("telehealth.ecg.duty")

# A roster listing covers at most this long (GET /api/ecg/duty?from=&to=).
MAX_LIST_DAYS = 100
DEFAULT_LIST_BEFORE = timedelta(hours=12)
DEFAULT_LIST_AFTER = timedelta(days=14)


def _require_staff(principal: Principal) -> None:
    if principal.system or not (principal.is_clinical or principal.has_role(Role.FACILITY_ADMIN)):
        raise Forbidden("the duty roster is open to clinical staff and facility administrators")


async def learn(conn: asyncpg.Connection, principal: Principal) -> None:
    """Remember what the caller's facility reads for, from the caller's signed token."""
    if not principal.system:
        await repo.learn_reading_centre(conn, principal.facility_id, principal.serves)


async def remember_reading_centre(db: Database, principal: Principal) -> None:
    """:func:`learn` in a transaction of its own; never fails the caller (it is a refresh)."""
    try:
        async with db.transaction(principal) as conn:
            await learn(conn, principal)
    except Exception:
        log.warning("remembering the reading centre failed", extra={"facility_id": str(principal.facility_id)})


def shift_window(body: DutyShiftIn, settings: EcgSettings, now: datetime) -> tuple[datetime, datetime]:
    """(starts_at, ends_at) of a new shift, validated (422 otherwise)."""
    starts = body.starts_at or now
    ends = body.ends_at if body.ends_at is not None else starts + timedelta(hours=float(body.hours or 0))
    if ends <= starts:
        raise Invalid("ends_at must be after starts_at")
    if ends - starts > timedelta(hours=settings.duty_max_shift_hours):
        raise Invalid(f"a shift lasts at most {settings.duty_max_shift_hours:g} hours")
    if ends <= now:
        raise Invalid("that shift is over already: ends_at must lie in the future")
    if starts > now + timedelta(days=settings.duty_max_days_ahead):
        raise Invalid(f"a shift may be scheduled at most {settings.duty_max_days_ahead:g} days ahead")
    return starts, ends


async def facility_specialist(token: str, principal: Principal, user_id: UUID) -> str:
    """The display name of ``user_id`` if it is an active specialist of the caller's facility (422 if not),
    asked from the gateway's user administration with the caller's (the admin's) token."""
    url = f"{platform_settings().gateway_url.rstrip('/')}/api/admin/users/{user_id}"
    try:
        async with httpx.AsyncClient(timeout=5.0) as client:
            r = await client.get(url, headers={"Authorization": f"Bearer {token}"})
    except httpx.HTTPError as exc:
        raise Unavailable("the user directory (gateway) is unavailable; retry shortly") from exc
    if r.status_code == 404:
        raise Invalid("user_id: no such user at your facility")
    if r.status_code in (401, 403):
        raise Forbidden("your account may not schedule other users")
    if r.status_code != 200:
        raise Unavailable(f"the user directory answered {r.status_code}; retry shortly")
    user: dict[str, Any] = r.json()
    if str((user.get("facility") or {}).get("id")) != str(principal.facility_id):
        raise Invalid("user_id: that user works at another facility")
    if not user.get("active", False):
        raise Invalid("user_id: that account is deactivated")
    if Role.SPECIALIST not in (user.get("roles") or []):
        raise Invalid("user_id: only specialists (readers) can be on duty")
    return str(user.get("display_name") or user.get("username") or user_id)


async def create_shift(
    db: Database, principal: Principal, token: str | None, body: DutyShiftIn, settings: EcgSettings | None = None
) -> DutyShift:
    s = settings or ecg_settings()
    _require_staff(principal)
    target = body.user_id or principal.user_id
    if target == principal.user_id:
        if not principal.has_role(Role.SPECIALIST):
            raise Forbidden("only specialists (readers) can be on duty")
        name = principal.display_name
    else:
        if not principal.has_role(Role.FACILITY_ADMIN):
            raise Forbidden("a specialist puts only themselves on duty; the facility_admin schedules others")
        if not token:
            raise Forbidden("scheduling someone else needs your bearer token")
        name = await facility_specialist(token, principal, target)
    starts, ends = shift_window(body, s, datetime.now(UTC))
    async with db.transaction(principal) as conn:
        await learn(conn, principal)
        shift = await repo.insert_shift(conn, {
            "id": uuid.uuid4(), "facility_id": principal.facility_id, "user_id": target, "display_name": name,
            "starts_at": starts, "ends_at": ends, "created_by": principal.user_id,
            "created_by_name": principal.display_name,
        })
        await write(conn, AuditEntry.for_principal(
            principal, source="ecg", action="ecg.duty.schedule", outcome="success", object_type="ecg_duty_shift",
            object_id=str(shift.id), detail={"user_id": str(target), "starts_at": starts.isoformat(),
                                             "ends_at": ends.isoformat()},
        ))
    return shift


async def take_off_duty(db: Database, principal: Principal, shift_id: UUID) -> None:
    """End a running shift now or remove a future one; a past shift stays on the record (409)."""
    _require_staff(principal)
    async with db.transaction(principal) as conn:
        shift = await repo.get_shift(conn, shift_id, principal.facility_id, lock=True)
        if shift is None:
            raise NotFound("no such shift")
        if shift.user_id != principal.user_id and not principal.has_role(Role.FACILITY_ADMIN):
            raise Forbidden("only the reader on the shift or the facility_admin may take it off the roster")
        outcome = await repo.take_off(conn, shift_id)
        if outcome == "past":
            raise Conflict("that shift is over: it stays on the record")
        await write(conn, AuditEntry.for_principal(
            principal, source="ecg", action="ecg.duty.take_off", outcome="success", object_type="ecg_duty_shift",
            object_id=str(shift_id), detail={"user_id": str(shift.user_id), "outcome": outcome},
        ))


async def list_shifts(
    db: Database, principal: Principal, *, since: datetime | None = None, until: datetime | None = None,
    user_id: UUID | None = None,
) -> DutyList:
    """Shifts of the caller's facility overlapping [since, until) (default: 12 h ago to 14 days ahead)."""
    _require_staff(principal)
    now = datetime.now(UTC)
    start = since or now - DEFAULT_LIST_BEFORE
    end = until or (now if since is None else start) + DEFAULT_LIST_AFTER
    for value, name in ((start, "from"), (end, "to")):
        if value.tzinfo is None:
            raise Invalid(f"{name} needs a time zone")
    if end <= start:
        raise Invalid("to must be after from")
    if end - start > timedelta(days=MAX_LIST_DAYS):
        raise Invalid(f"a roster listing covers at most {MAX_LIST_DAYS} days")
    async with db.transaction(principal) as conn:
        await learn(conn, principal)
        return DutyList(items=await repo.list_shifts(conn, principal.facility_id, start, end, user_id))


async def on_duty_now(db: Database, principal: Principal) -> DutyNow:
    """Who is on duty now at the caller's facility and at the reading centre(s) that read for it."""
    _require_staff(principal)
    async with db.transaction(principal) as conn:
        await learn(conn, principal)
        items = await repo.current_shifts(conn, [principal.facility_id])
    # The reading centre's roster is not the township's row to read (RLS): the platform reads the shifts of
    # exactly the centres known to read for the caller's facility, names and times only.
    async with db.transaction(system_principal(principal.facility_id)) as conn:
        centres = [c for c in await repo.reading_centres_of(conn, principal.facility_id) if c != principal.facility_id]
        if centres:
            items += await repo.current_shifts(conn, centres)
    return DutyNow(facility_ids=[principal.facility_id, *centres], items=items)
