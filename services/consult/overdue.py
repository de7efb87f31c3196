"""Deadlines of open consults (docs/consult.md "States", CONSULT_DEADLINES): respond (accept/decline) and opinion,
counted from submission. The beat task ``consult.escalate_overdue`` calls :func:`escalate`: a consult past a
deadline is marked (``overdue_at``, first time), its ``escalation_level`` goes up by one, and a
``consult.overdue`` event goes to the target facility (its admins watch it) — once per deadline: the deadline's
name is kept in ``escalated`` so the next run does not escalate it again.

Who hears of it: the target facility's specialists see the escalated consults in their incoming box
(``escalations`` of ``GET /api/consult/consults?box=incoming``), its facility admins at
``GET /api/consult/escalations`` (ids, deadlines and levels; no patient) — :func:`escalations`.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any, Literal
from uuid import UUID

import asyncpg

from common.auth import Principal, Role, system_principal
from common.db import Database
from common.errors import Forbidden
from common.events import record_event
from services.consult import repository as repo
from services.consult.schemas import ConsultRow, Escalation, EscalationList


def missed(c: ConsultRow, now: datetime) -> list[str]:
    """The deadlines ``c`` has missed and not yet escalated, as of ``now``."""
    found: list[str] = []
    if c.status == "submitted" and c.respond_by is not None and c.respond_by < now and "respond" not in c.escalated:
        found.append("respond")
    if (c.status in ("submitted", "accepted", "scheduled", "in_session") and c.opinion_by is not None
            and c.opinion_by < now and "opinion" not in c.escalated):
        found.append("opinion")
    return found


async def escalate(db: Database, now: datetime | None = None) -> dict[str, Any]:
    """Escalate every consult past a deadline not escalated yet (idempotent per deadline)."""
    at = now or datetime.now(UTC)
    escalated = 0
    async with db.transaction(system_principal()) as conn:
        for c in await repo.missed_deadlines(conn, at):
            kinds = missed(c, at)
            if not kinds:
                continue
            level = c.escalation_level
            for kind in kinds:
                level += 1
                due = c.respond_by if kind == "respond" else c.opinion_by
                await record_event(conn, "consult", "consult.overdue", facility_id=c.target_facility_id,
                                   subject_type="consult", subject_id=c.id, payload={
                                       "consult_id": str(c.id), "deadline": kind, "level": level,
                                       "urgency": c.urgency, "requesting_facility_id": str(c.facility_id),
                                       "minutes_late": round((at - due).total_seconds() / 60, 1) if due else None,
                                       "notify": "facility_admin"})
                escalated += 1
            await repo.update_consult(conn, c.id, {"escalated": [*c.escalated, *kinds], "escalation_level": level,
                                                   "overdue_at": c.overdue_at or at})
    return {"escalated": escalated}


def as_escalation(c: ConsultRow) -> Escalation:
    deadline: Literal["respond", "opinion"] = (
        "respond" if c.status == "submitted" and "respond" in c.escalated else "opinion")
    return Escalation(consult_id=c.id, status=c.status, urgency=c.urgency,
                      facility_id=c.facility_id, target_facility_id=c.target_facility_id, specialty=c.specialty,
                      consultant_id=c.consultant_id, deadline=deadline,
                      due_at=c.respond_by if deadline == "respond" else c.opinion_by,
                      escalation_level=c.escalation_level, overdue_at=c.overdue_at)


async def escalated_for(conn: asyncpg.Connection, facility_id: UUID, limit: int = 50) -> list[Escalation]:
    """The escalated overdue consults asked of ``facility_id`` (caller's transaction)."""
    return [as_escalation(c) for c in await repo.escalated_for(conn, facility_id, limit)]


async def escalations(db: Database, principal: Principal, limit: int = 50) -> EscalationList:
    """Escalations for the caller's facility as the consulted side: its specialists and its facility admins."""
    if not (principal.has_role(Role.SPECIALIST) or principal.has_role(Role.FACILITY_ADMIN)):
        raise Forbidden("escalations go to the consulted facility's specialists and administrators")
    async with db.transaction(principal) as conn:
        items = await escalated_for(conn, principal.facility_id, max(1, min(limit, 200)))
    return EscalationList(items=items)
