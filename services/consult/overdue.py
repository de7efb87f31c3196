"""Deadlines of open consults (docs/consult.md "States", CONSULT_DEADLINES): respond (accept/decline) and opinion,
counted from submission. The beat task ``consult.escalate_overdue`` calls :func:`escalate`: a consult past a
deadline is marked (``overdue_at``, first time), its ``escalation_level`` goes up by one, and a
``consult.overdue`` event goes to the target facility (its admins watch it) — once per deadline: the deadline's
name is kept in ``escalated`` so the next run does not escalate it again.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from common.auth import system_principal
from common.db import Database
from common.events import record_event
from services.consult import repository as repo
from services.consult.schemas import ConsultRow


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
