"""Domain rules of the consult workflow: drafts, the transitions of the state machine (states.py), the
inboxes and the detail. No FastAPI, no SQL (repository*.py). The caller owns the transaction for
:func:`transition`; the other functions open their own.

:func:`transition` is the one door through which a consult changes status (other modules call it for
schedule, write_opinion, sign, acknowledge, close): it checks the move (409 with the current state) and the
actor, sets the columns the move implies, writes the history row, the outbox event and the audit record in
the caller's transaction, and plans or withdraws grants to attached items (applied after commit).
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import UUID

import asyncpg

from common.audit import AuditEntry, write
from common.auth import Principal
from common.db import Database
from common.errors import Conflict, Forbidden, Invalid, NotFound
from common.events import record_event
from services.consult import access, grants, overdue, remote, states
from services.consult import repository as repo
from services.consult import repository_items as items
from services.consult import repository_schedule as bookings
from services.consult.schemas import (
    ConsentStatus,
    ConsultCreateIn,
    ConsultDetail,
    ConsultFields,
    ConsultList,
    ConsultRow,
    ConsultSummary,
)
from services.consult.settings import consult_settings

log = logging.getLogger("telehealth.consult")
# Fields the invitation must carry before it is submitted (docs/consult.md, 国卫医发〔2014〕51号).
REQUIRED_TO_SUBMIT = ("reason", "question", "clinical_summary")


def _json_safe(value: Any) -> Any:
    if isinstance(value, UUID | datetime):
        return str(value) if isinstance(value, UUID) else value.isoformat()
    if isinstance(value, dict):
        return {str(k): _json_safe(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_json_safe(v) for v in value]
    return value


def _minutes(since: datetime | None, now: datetime) -> float | None:
    return round((now - since).total_seconds() / 60, 1) if since else None


async def transition(conn: asyncpg.Connection, principal: Principal, consult: ConsultRow, action: str, *,
                     changes: dict[str, Any] | None = None, **details: Any) -> ConsultRow:
    """Move ``consult`` (loaded by the caller, ideally with ``lock=True``) by ``action``. ``changes`` are
    further columns to set; ``details`` go into the history row (never into the event)."""
    move = states.check(action, consult.status)
    participant = None if principal.system else await repo.participant(conn, consult.id, principal.user_id)
    capacities = access.sides(principal, consult, participant)
    if not principal.system and not (move.who & capacities):
        raise Forbidden(f"{action}: not allowed for you on this consult")
    before_session = None
    if action == "end_session":
        before_session = await items.status_before(conn, consult.id, "start_session")
    target = states.resolve_target(action, consult.status, before_session)
    now = datetime.now(UTC)
    cols: dict[str, Any] = dict(changes or {})
    payload: dict[str, Any] = {"consult_id": str(consult.id), "from": consult.status, "to": target,
                               "urgency": consult.urgency, "target_facility_id": str(consult.target_facility_id)}
    if action == "submit":
        s = consult_settings()
        cols.update(submitted_at=now,
                    respond_by=now + timedelta(minutes=s.deadline_minutes(consult.urgency, "respond")),
                    opinion_by=now + timedelta(minutes=s.deadline_minutes(consult.urgency, "opinion")))
        payload["specialty"] = consult.specialty
    elif action == "accept":
        cols["accepted_at"] = now
        payload.update(response_minutes=_minutes(consult.submitted_at, now),
                       on_time=consult.respond_by is None or now <= consult.respond_by)
    elif action == "decline":
        if not str(details.get("reason") or "").strip():
            raise Invalid("reason: a decline states its reason")
        cols.update(declined_at=now, decline_reason=str(details["reason"]).strip())
    elif action == "cancel":
        if not str(details.get("reason") or "").strip():
            raise Invalid("reason: a cancellation states its reason")
        cols.update(cancelled_at=now, cancel_reason=str(details["reason"]).strip())
    elif action == "sign":
        payload.update(turnaround_minutes=_minutes(consult.submitted_at, now),
                       on_time=consult.opinion_by is None or now <= consult.opinion_by)
    elif action == "close":
        cols["closed_at"] = now
        if "consultant" not in capacities and not principal.system \
                and not await items.has_transition(conn, consult.id, "acknowledge"):
            raise Conflict("acknowledge the signed opinion before closing the consult", code="acknowledge_first")
    if target != consult.status:
        cols["status"] = target
    if target in states.FINAL and target != consult.status:
        # a consult that ends gives its booked time back: the slot is free again (its calendar event shows
        # CANCELLED, ical.py), in this same transaction
        booking = await bookings.active_booking(conn, consult.id, lock=True)
        if booking is not None:
            await bookings.release_booking(conn, booking, principal.user_id)
            payload["booking_released"] = str(booking["id"])
    updated = await repo.update_consult(conn, consult.id, cols) if cols else consult
    await repo.insert_transition(conn, updated, action=action, from_status=consult.status, to_status=target,
                                 actor_id=principal.user_id, actor_name=principal.display_name,
                                 detail=_json_safe(details))
    await record_event(conn, "consult", move.event, facility_id=consult.facility_id, subject_type="consult",
                       subject_id=consult.id, payload=payload)
    await write(conn, AuditEntry.for_principal(
        principal, source="consult", action=f"consult.{action}", outcome="success", object_type="consult",
        object_id=str(consult.id), detail={"from": consult.status, "to": target},
    ))
    if action == "accept" or (action == "reassign" and updated.consultant_id != consult.consultant_id):
        await grants.plan(conn, updated)
    elif action in ("close", "cancel"):
        await grants.request_revocation(conn, updated)
    return updated


# -- drafts -------------------------------------------------------------------------------------------


def _require_clinical(principal: Principal) -> None:
    if not principal.is_clinical:
        raise Forbidden("consults are open to clinical roles only")


async def _named_specialist(token: str, facility_id: UUID, user_id: UUID) -> remote.Person:
    person = await remote.clinician(token, facility_id, user_id)
    if person is None or "specialist" not in person.roles:
        raise Invalid("consultant_id: not a specialist of the target facility")
    return person


async def create_draft(db: Database, principal: Principal, token: str, body: ConsultCreateIn) -> ConsultRow:
    """A new draft at the caller's facility; the caller is its requester."""
    _require_clinical(principal)
    if body.target_facility_id is None:
        raise Invalid("target_facility_id is required")
    if body.target_facility_id == principal.facility_id:
        raise Invalid("target_facility_id: a consult asks another facility")
    values = body.model_dump(exclude_none=True)
    if body.consultant_id is not None:
        values["consultant_name"] = (await _named_specialist(token, body.target_facility_id,
                                                             body.consultant_id)).display_name
    values.update(facility_id=principal.facility_id, requester_id=principal.user_id,
                  requester_name=principal.display_name, status="draft")
    async with db.transaction(principal) as conn:
        consult_id = await repo.insert_consult(conn, values)
        row = await repo.consult(conn, consult_id)
        assert row is not None
        await repo.add_participant(conn, row, user_id=principal.user_id, display_name=principal.display_name,
                                   role="requester", user_facility_id=principal.facility_id,
                                   added_by=principal.user_id)
        await write(conn, AuditEntry.for_principal(principal, source="consult", action="consult.create",
                                                   outcome="success", object_type="consult", object_id=str(row.id)))
    return row


async def edit_draft(db: Database, principal: Principal, token: str, consult_id: UUID,
                     body: ConsultFields) -> ConsultRow:
    """Change a draft's fields (the requesting side; drafts only)."""
    changes = body.model_dump(exclude_unset=True)
    async with db.transaction(principal) as conn:
        c = await access.visible_consult(conn, principal, consult_id, lock=True)
        if "requesting" not in access.sides(principal, c):
            raise Forbidden("only the requesting side edits a draft")
        if c.status != "draft":
            raise Conflict(f"only a draft can be edited; current state: {c.status}")
        target = changes.get("target_facility_id") or c.target_facility_id
        if changes.get("target_facility_id") is None:
            changes.pop("target_facility_id", None)
        elif target == c.facility_id:
            raise Invalid("target_facility_id: a consult asks another facility")
        if changes.get("consultant_id") is not None:
            changes["consultant_name"] = (await _named_specialist(token, target, changes["consultant_id"])).display_name
        elif "consultant_id" in changes or "target_facility_id" in changes:
            changes.update(consultant_id=None, consultant_name=None)
        for key in ("urgency", "patient_sex"):
            if key in changes and changes[key] is None:
                changes.pop(key)
        for key in ("target_department", "specialty", "reason", "question", "clinical_summary", "patient_name"):
            if key in changes and changes[key] is None:
                changes[key] = ""
        row = await repo.update_consult(conn, consult_id, changes) if changes else c
        if row.target_facility_id != c.target_facility_id:
            await repo.move_target_facility(conn, consult_id, row.target_facility_id)
    return row


# -- the inboxes and the detail ----------------------------------------------------------------------------


def summary(c: ConsultRow, now: datetime) -> ConsultSummary:
    due = c.respond_by if c.status == "submitted" else c.opinion_by if c.status in states.OPEN else None
    overdue = c.status in states.OPEN and (c.overdue_at is not None or (due is not None and due < now))
    return ConsultSummary(**c.model_dump(include=set(ConsultSummary.model_fields) - {"overdue"}), overdue=overdue)


async def list_consults(db: Database, principal: Principal, *, box: str, statuses: list[str] | None,
                        urgency: str | None, limit: int, offset: int) -> ConsultList:
    _require_clinical(principal)
    if box not in ("outgoing", "incoming"):
        raise Invalid("box must be outgoing or incoming")
    if statuses and any(s not in states.STATUSES for s in statuses):
        raise Invalid(f"status must be among {', '.join(states.STATUSES)}")
    if urgency is not None and urgency not in ("emergency", "urgent", "routine"):
        raise Invalid("urgency must be emergency, urgent or routine")
    limit = max(1, min(limit, 200))
    async with db.transaction(principal) as conn:
        rows = await repo.list_consults(conn, box=box, facility_id=principal.facility_id, user_id=principal.user_id,
                                        specialist=principal.has_role("specialist"), statuses=statuses,
                                        urgency=urgency, limit=limit, offset=max(0, offset))
        escalations = (await overdue.escalated_for(conn, principal.facility_id)
                       if box == "incoming" and principal.has_role("specialist") else [])
    now = datetime.now(UTC)
    return ConsultList(items=[summary(r, now) for r in rows], box=box,  # type: ignore[arg-type]
                       limit=limit, offset=offset, escalations=escalations)


async def detail(db: Database, principal: Principal, consult_id: UUID) -> ConsultDetail:
    async with db.transaction(principal) as conn:
        c = await access.visible_consult(conn, principal, consult_id)
        me = await repo.participant(conn, consult_id, principal.user_id)
        capacities = access.sides(principal, c, me)
        consent = await items.current_consent(conn, consult_id)
        return ConsultDetail(
            consult=c, my_roles=sorted(capacities),
            allowed_actions=states.allowed(c.status, capacities, system=principal.system),
            participants=await repo.participants(conn, consult_id),
            attachments=await items.attachments(conn, consult_id),
            consent=ConsentStatus(recorded=consent is not None, current=consent),
            history=await repo.transitions(conn, consult_id),
            grants=await items.grants(conn, consult_id),
            sessions=await repo.sessions(conn, consult_id),
        )


# -- the workflow's own actions --------------------------------------------------------------------------


async def act(db: Database, principal: Principal, consult_id: UUID, action: str, **details: Any) -> ConsultRow:
    """Run one transition in a transaction of its own, then push grant changes (after the commit)."""
    async with db.transaction(principal) as conn:
        c = await access.visible_consult(conn, principal, consult_id, lock=True)
        if action == "submit":
            await _check_submittable(conn, c)
        row = await transition(conn, principal, c, action, **details)
    await grants.apply_for_consult(db, consult_id)
    return row


async def _check_submittable(conn: asyncpg.Connection, c: ConsultRow) -> None:
    if c.status != "draft":
        states.check("submit", c.status)
    if await items.current_consent(conn, c.id) is None:
        raise Conflict("the patient's consent must be recorded before the consult is submitted",
                       code="consent_required")
    missing = [f for f in REQUIRED_TO_SUBMIT if not getattr(c, f).strip()]
    if not c.specialty.strip() and c.consultant_id is None:
        missing.append("specialty (or consultant_id)")
    if missing:
        raise Invalid(f"the invitation needs: {', '.join(missing)}")


async def accept(db: Database, principal: Principal, token: str, consult_id: UUID,
                 consultant_id: UUID | None) -> ConsultRow:
    """The target side accepts; the consultant is the caller unless another specialist is named."""
    async with db.transaction(principal) as conn:
        c = await access.visible_consult(conn, principal, consult_id)
    if not principal.has_role("specialist"):
        raise Forbidden("accepting a consult needs the specialist role")
    who = consultant_id or principal.user_id
    if who == principal.user_id and principal.facility_id == c.target_facility_id:
        name = principal.display_name
    else:
        name = (await _named_specialist(token, c.target_facility_id, who)).display_name
    async with db.transaction(principal) as conn:
        c = await access.visible_consult(conn, principal, consult_id, lock=True)
        states.check("accept", c.status)
        await _set_consultant(conn, principal, c, who, name)
        row = await transition(conn, principal, c, "accept", changes={"consultant_id": who, "consultant_name": name},
                               consultant_id=str(who))
    await grants.apply_for_consult(db, consult_id)
    return row


async def reassign(db: Database, principal: Principal, token: str, consult_id: UUID, consultant_id: UUID,
                   reason: str) -> ConsultRow:
    """Another specialist of the target facility becomes the consultant."""
    async with db.transaction(principal) as conn:
        c = await access.visible_consult(conn, principal, consult_id)
        states.check("reassign", c.status)
    person = await _named_specialist(token, c.target_facility_id, consultant_id)
    async with db.transaction(principal) as conn:
        c = await access.visible_consult(conn, principal, consult_id, lock=True)
        states.check("reassign", c.status)
        if c.consultant_id == consultant_id:
            raise Conflict("that specialist is the consultant already")
        old = c.consultant_id
        row = await transition(conn, principal, c, "reassign",
                               changes={"consultant_id": consultant_id, "consultant_name": person.display_name},
                               consultant_id=str(consultant_id), previous=str(old) if old else None, reason=reason)
        await _set_consultant(conn, principal, c, consultant_id, person.display_name)
    await grants.apply_for_consult(db, consult_id)
    return row


async def _set_consultant(conn: asyncpg.Connection, principal: Principal, c: ConsultRow, user_id: UUID,
                          name: str) -> None:
    await repo.remove_participants(conn, c.id, role="consultant")
    await repo.remove_participants(conn, c.id, user_id=user_id)  # an invitee who becomes the consultant
    await repo.add_participant(conn, c, user_id=user_id, display_name=name, role="consultant",
                               user_facility_id=c.target_facility_id, added_by=principal.user_id)


async def invite(db: Database, principal: Principal, token: str, consult_id: UUID, user_id: UUID) -> None:
    """Add a colleague of either side (at most CONSULT_MAX_PARTICIPANTS people on a consult)."""
    async with db.transaction(principal) as conn:
        c = await access.visible_consult(conn, principal, consult_id)
    if c.status in states.FINAL:
        raise Conflict(f"the consult is {c.status}; current state: {c.status}")
    me_sides = access.sides(principal, c)
    if not me_sides & {"requesting", "target", "consultant"}:
        raise Forbidden("only the requesting side or the consulted side invites")
    person = await remote.clinician(token, c.facility_id, user_id) or await remote.clinician(
        token, c.target_facility_id, user_id)
    if person is None:
        raise Invalid("user_id: not a clinician of the requesting or the target facility")
    async with db.transaction(principal) as conn:
        c = await access.visible_consult(conn, principal, consult_id, lock=True)
        people = await repo.participants(conn, consult_id)
        if any(p.user_id == user_id for p in people):
            raise Conflict("already a participant")
        if len(people) >= consult_settings().max_participants:
            raise Conflict(f"a consult has at most {consult_settings().max_participants} participants",
                           code="too_many_participants")
        await repo.add_participant(conn, c, user_id=person.user_id, display_name=person.display_name,
                                   role="invitee", user_facility_id=person.facility_id, added_by=principal.user_id)
        await write(conn, AuditEntry.for_principal(principal, source="consult", action="consult.invite",
                                                   outcome="success", object_type="consult", object_id=str(c.id),
                                                   detail={"user_id": str(user_id)}))


async def remove_invitee(db: Database, principal: Principal, consult_id: UUID, user_id: UUID) -> None:
    """Take an invited colleague off the consult (the requesting side or the consulted side; not once the
    consult ended). The requester and the consultant are not removed (reassign changes the consultant)."""
    async with db.transaction(principal) as conn:
        c = await access.visible_consult(conn, principal, consult_id, lock=True)
        if not access.sides(principal, c) & {"requesting", "target", "consultant"}:
            raise Forbidden("only the requesting side or the consulted side removes a participant")
        if c.status in states.FINAL:
            raise Conflict(f"the consult is {c.status}; current state: {c.status}")
        person = await repo.participant(conn, consult_id, user_id)
        if person is None:
            raise NotFound("no such participant")
        if person.role != "invitee":
            raise Conflict("only invited participants are removed (reassign changes the consultant)",
                           code="not_an_invitee")
        await repo.remove_participants(conn, consult_id, user_id=user_id)
        await write(conn, AuditEntry.for_principal(principal, source="consult", action="consult.uninvite",
                                                   outcome="success", object_type="consult", object_id=str(c.id),
                                                   detail={"user_id": str(user_id)}))


async def require_consult(db: Database, principal: Principal, consult_id: UUID) -> ConsultRow:
    async with db.transaction(principal) as conn:
        return await access.visible_consult(conn, principal, consult_id)


def not_found() -> NotFound:
    return NotFound(access.NOT_FOUND)
