"""SQL of consults, participants, transitions and sessions (migrations/0002). The caller owns the transaction.

Row-level security lets both facilities of a consult see its rows; the narrower rules (who on each side) are
in services/consult/access.py.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any
from uuid import UUID

import asyncpg

from services.consult.schemas import ConsultRow, ParticipantRow, SessionRow, TransitionRow

CONSULT_COLUMNS = (
    "id, facility_id, requester_id, requester_name, patient_id, patient_name, patient_sex, patient_age,"
    " target_facility_id, target_department, specialty, consultant_id, consultant_name, urgency, reason, question,"
    " clinical_summary, preferred_time, status, respond_by, opinion_by, overdue_at, escalated, escalation_level,"
    " decline_reason, cancel_reason, created_at, updated_at, submitted_at, accepted_at, declined_at, cancelled_at,"
    " closed_at"
)
# Columns a draft edit or a transition may set (the keys of ``update_consult``).
WRITABLE = frozenset({
    "patient_id", "patient_name", "patient_sex", "patient_age", "target_facility_id", "target_department",
    "specialty", "consultant_id", "consultant_name", "urgency", "reason", "question", "clinical_summary",
    "preferred_time", "status", "respond_by", "opinion_by", "overdue_at", "escalated", "escalation_level",
    "decline_reason", "cancel_reason", "submitted_at", "accepted_at", "declined_at", "cancelled_at", "closed_at",
})
PARTICIPANT_COLUMNS = "id, consult_id, user_id, display_name, role, user_facility_id, added_at"


def _consult(row: asyncpg.Record | None) -> ConsultRow | None:
    return ConsultRow.model_validate(dict(row)) if row is not None else None


async def consult(conn: asyncpg.Connection, consult_id: UUID, *, lock: bool = False) -> ConsultRow | None:
    row = await conn.fetchrow(
        f"SELECT {CONSULT_COLUMNS} FROM consult.consults WHERE id = $1" + (" FOR UPDATE" if lock else ""),
        consult_id,
    )
    return _consult(row)


async def insert_consult(conn: asyncpg.Connection, values: dict[str, Any]) -> UUID:
    consult_id = uuid.uuid4()
    cols = ["id", *values.keys()]
    params = [consult_id, *values.values()]
    placeholders = ", ".join(f"${i}" for i in range(1, len(params) + 1))
    await conn.execute(
        f"INSERT INTO consult.consults ({', '.join(cols)}) VALUES ({placeholders})",
        *params,
    )
    return consult_id


async def update_consult(conn: asyncpg.Connection, consult_id: UUID, changes: dict[str, Any]) -> ConsultRow:
    unknown = set(changes) - WRITABLE
    if unknown:
        raise ValueError(f"not writable: {sorted(unknown)}")
    sets = [f"{k} = ${i}" for i, k in enumerate(changes, start=2)]
    sets.append("updated_at = now()")
    row = await conn.fetchrow(
        f"UPDATE consult.consults SET {', '.join(sets)} WHERE id = $1 RETURNING {CONSULT_COLUMNS}",
        consult_id, *changes.values(),
    )
    result = _consult(row)
    if result is None:
        raise LookupError("consult vanished")
    return result


async def list_consults(
    conn: asyncpg.Connection, *, box: str, facility_id: UUID, user_id: UUID, specialist: bool,
    statuses: list[str] | None, urgency: str | None, limit: int, offset: int,
) -> list[ConsultRow]:
    """The outgoing box (the caller's facility's requests) or the incoming box (target side specialists, consultants,
    invitees). The incoming box lists overdue consults first, then emergency, urgent, routine, then the
    nearest deadline."""
    args: list[Any] = [facility_id, user_id]
    mine = ("EXISTS (SELECT 1 FROM consult.participants p WHERE p.consult_id = c.id AND p.user_id = $2"
            " AND p.role <> 'requester' AND p.removed_at IS NULL)")
    if box == "outgoing":
        args = [facility_id]
        where = ["c.facility_id = $1"]
        order = "c.created_at DESC"
    else:
        args.append(specialist)
        side = "$3::boolean AND c.target_facility_id = $1 AND c.status <> 'draft'"
        where = [f"(({side}) OR c.consultant_id = $2 OR ({mine} AND c.status <> 'draft'))"]
        order = ("(c.overdue_at IS NOT NULL AND c.status IN ('submitted', 'accepted', 'scheduled', 'in_session'))"
                 " DESC, CASE c.urgency WHEN 'emergency' THEN 0 WHEN 'urgent' THEN 1 ELSE 2 END,"
                 " coalesce(CASE WHEN c.status = 'submitted' THEN c.respond_by ELSE c.opinion_by END,"
                 " 'infinity'::timestamptz), c.created_at")
    if statuses:
        args.append(statuses)
        where.append(f"c.status = ANY(${len(args)}::text[])")
    if urgency:
        args.append(urgency)
        where.append(f"c.urgency = ${len(args)}")
    args.extend([limit, offset])
    cols = ", ".join(f"c.{c.strip()}" for c in CONSULT_COLUMNS.split(","))
    rows = await conn.fetch(
        f"SELECT {cols} FROM consult.consults c WHERE {' AND '.join(where)}"
        f" ORDER BY {order} LIMIT ${len(args) - 1} OFFSET ${len(args)}",
        *args,
    )
    return [ConsultRow.model_validate(dict(r)) for r in rows]


# -- participants ---------------------------------------------------------------------------------


async def participants(conn: asyncpg.Connection, consult_id: UUID) -> list[ParticipantRow]:
    rows = await conn.fetch(
        f"SELECT {PARTICIPANT_COLUMNS} FROM consult.participants"
        " WHERE consult_id = $1 AND removed_at IS NULL ORDER BY added_at, id",
        consult_id,
    )
    return [ParticipantRow.model_validate(dict(r)) for r in rows]


async def participant(conn: asyncpg.Connection, consult_id: UUID, user_id: UUID) -> ParticipantRow | None:
    row = await conn.fetchrow(
        f"SELECT {PARTICIPANT_COLUMNS} FROM consult.participants"
        " WHERE consult_id = $1 AND user_id = $2 AND removed_at IS NULL",
        consult_id, user_id,
    )
    return ParticipantRow.model_validate(dict(row)) if row is not None else None


async def add_participant(conn: asyncpg.Connection, c: ConsultRow, *, user_id: UUID, display_name: str, role: str,
                          user_facility_id: UUID, added_by: UUID) -> UUID:
    pid = uuid.uuid4()
    await conn.execute(
        "INSERT INTO consult.participants (id, consult_id, facility_id, target_facility_id, user_id, display_name,"
        " role, user_facility_id, added_by) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
        pid, c.id, c.facility_id, c.target_facility_id, user_id, display_name, role, user_facility_id, added_by,
    )
    return pid


async def remove_participants(conn: asyncpg.Connection, consult_id: UUID, *, role: str | None = None,
                              user_id: UUID | None = None) -> None:
    await conn.execute(
        "UPDATE consult.participants SET removed_at = now() WHERE consult_id = $1 AND removed_at IS NULL"
        " AND ($2::text IS NULL OR role = $2) AND ($3::uuid IS NULL OR user_id = $3)",
        consult_id, role, user_id,
    )


async def move_target_facility(conn: asyncpg.Connection, consult_id: UUID, target: UUID) -> None:
    """A draft's target facility changed: the child rows follow (their policy reads the copy)."""
    for table in ("participants", "consents", "attachments", "transitions", "item_grants", "sessions"):
        await conn.execute(
            f"UPDATE consult.{table} SET target_facility_id = $2 WHERE consult_id = $1",
            consult_id, target,
        )


# -- transitions ------------------------------------------------------------------------------------


async def insert_transition(conn: asyncpg.Connection, c: ConsultRow, *, action: str, from_status: str,
                            to_status: str, actor_id: UUID, actor_name: str, detail: dict[str, Any]) -> UUID:
    tid = uuid.uuid4()
    await conn.execute(
        "INSERT INTO consult.transitions (id, consult_id, facility_id, target_facility_id, action, from_status,"
        " to_status, actor_id, actor_name, detail) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)",
        tid, c.id, c.facility_id, c.target_facility_id, action, from_status, to_status, actor_id, actor_name, detail,
    )
    return tid


async def transitions(conn: asyncpg.Connection, consult_id: UUID) -> list[TransitionRow]:
    rows = await conn.fetch(
        "SELECT id, action, from_status, to_status, actor_id, actor_name, detail, at FROM consult.transitions"
        " WHERE consult_id = $1 ORDER BY at, id",
        consult_id,
    )
    return [TransitionRow.model_validate(dict(r)) for r in rows]


# -- sessions -----------------------------------------------------------------------------------------

SESSION_COLUMNS = "id, consult_id, started_by, host_user_id, started_at, ended_at"


async def session(conn: asyncpg.Connection, session_id: UUID, *, lock: bool = False) -> SessionRow | None:
    row = await conn.fetchrow(
        f"SELECT {SESSION_COLUMNS} FROM consult.sessions WHERE id = $1" + (" FOR UPDATE" if lock else ""),
        session_id,
    )
    return SessionRow.model_validate(dict(row)) if row is not None else None


async def open_session(conn: asyncpg.Connection, consult_id: UUID) -> SessionRow | None:
    row = await conn.fetchrow(
        f"SELECT {SESSION_COLUMNS} FROM consult.sessions WHERE consult_id = $1 AND ended_at IS NULL",
        consult_id,
    )
    return SessionRow.model_validate(dict(row)) if row is not None else None


async def sessions(conn: asyncpg.Connection, consult_id: UUID) -> list[SessionRow]:
    rows = await conn.fetch(
        f"SELECT {SESSION_COLUMNS} FROM consult.sessions WHERE consult_id = $1 ORDER BY started_at",
        consult_id,
    )
    return [SessionRow.model_validate(dict(r)) for r in rows]


async def insert_session(conn: asyncpg.Connection, c: ConsultRow, *, started_by: UUID, host_user_id: UUID) -> UUID:
    sid = uuid.uuid4()
    await conn.execute(
        "INSERT INTO consult.sessions (id, consult_id, facility_id, target_facility_id, started_by, host_user_id)"
        " VALUES ($1, $2, $3, $4, $5, $6)",
        sid, c.id, c.facility_id, c.target_facility_id, started_by, host_user_id,
    )
    return sid


async def end_session(conn: asyncpg.Connection, session_id: UUID, ended_by: UUID) -> bool:
    done = await conn.execute(
        "UPDATE consult.sessions SET ended_at = now(), ended_by = $2 WHERE id = $1 AND ended_at IS NULL",
        session_id, ended_by,
    )
    return str(done) == "UPDATE 1"


# -- deadlines (system transaction) ---------------------------------------------------------------------


async def missed_deadlines(conn: asyncpg.Connection, now: datetime, limit: int = 500) -> list[ConsultRow]:
    """Open consults past a deadline not escalated yet: respond (still submitted) or opinion (not written)."""
    rows = await conn.fetch(
        f"SELECT {CONSULT_COLUMNS} FROM consult.consults"
        " WHERE (status = 'submitted' AND respond_by < $1 AND NOT ('respond' = ANY(escalated)))"
        " OR (status IN ('submitted', 'accepted', 'scheduled', 'in_session') AND opinion_by < $1"
        "     AND NOT ('opinion' = ANY(escalated)))"
        " ORDER BY coalesce(respond_by, opinion_by) LIMIT $2 FOR UPDATE SKIP LOCKED",
        now, limit,
    )
    return [ConsultRow.model_validate(dict(r)) for r in rows]


async def escalated_for(conn: asyncpg.Connection, target_facility_id: UUID, limit: int) -> list[ConsultRow]:
    """Open consults asked of ``target_facility_id`` whose current deadline was escalated (respond while
    submitted; opinion while not written), the highest level first."""
    rows = await conn.fetch(
        f"SELECT {CONSULT_COLUMNS} FROM consult.consults WHERE target_facility_id = $1"
        " AND ((status = 'submitted' AND escalated && ARRAY['respond', 'opinion'])"
        "   OR (status IN ('accepted', 'scheduled', 'in_session') AND 'opinion' = ANY(escalated)))"
        " ORDER BY escalation_level DESC, overdue_at, id LIMIT $2",
        target_facility_id, limit,
    )
    return [ConsultRow.model_validate(dict(r)) for r in rows]
