"""Who may see a consult, in one place (docs/consult.md "Who sees a consult"). Other consult modules (opinion,
scheduling, chat, rooms) call these functions rather than deciding themselves.

Visible to: clinicians of the requesting facility (and of the facilities whose ``serves`` include it);
specialists of the target facility (once submitted); the consultant; the consult's active participants; the
platform itself. Everyone else gets NotFound, exactly like a consult that does not exist. Row-level security
(both facility columns) is the second wall behind these rules.
"""

from __future__ import annotations

from uuid import UUID

import asyncpg

from common.auth import Principal, Role
from common.errors import NotFound
from services.consult import repository as repo
from services.consult.schemas import ConsultRow, ParticipantRow, SessionAccess, SessionParticipant, SessionRow

NOT_FOUND = "no such consult"


def sides(principal: Principal, consult: ConsultRow, participant: ParticipantRow | None = None) -> set[str]:
    """The capacities in which ``principal`` stands to ``consult``: ``requesting`` (a clinician of the
    requesting side), ``target`` (a specialist of the target facility), ``consultant``, and the participant's
    role (``requester``, ``consultant``, ``invitee``). Empty: may not see it."""
    found: set[str] = set()
    if principal.is_clinical and consult.facility_id in principal.visible_facility_ids:
        found.add("requesting")
    if (principal.has_role(Role.SPECIALIST) and principal.facility_id == consult.target_facility_id
            and consult.status != "draft"):
        found.add("target")
    if consult.consultant_id is not None and consult.consultant_id == principal.user_id \
            and consult.status != "draft":
        found.add("consultant")
    if participant is not None and (participant.role == "requester" or consult.status != "draft"):
        found.add(participant.role)
    return found


async def visible_consult(conn: asyncpg.Connection, principal: Principal, consult_id: UUID, *,
                          lock: bool = False) -> ConsultRow:
    """The consult if ``principal`` may see it (``lock``: FOR UPDATE); NotFound otherwise."""
    row = await repo.consult(conn, consult_id, lock=lock)
    if row is None:
        raise NotFound(NOT_FOUND)
    if principal.system:
        return row
    if not sides(principal, row, await repo.participant(conn, consult_id, principal.user_id)):
        raise NotFound(NOT_FOUND)
    return row


async def require_participant(conn: asyncpg.Connection, principal: Principal, consult_id: UUID) -> ParticipantRow:
    """The caller's participant row of a consult they may see (requester, consultant, invitee); NotFound
    when they may not see it or do not take part in it."""
    row = await repo.consult(conn, consult_id)
    if row is None:
        raise NotFound(NOT_FOUND)
    participant = await repo.participant(conn, consult_id, principal.user_id)
    if participant is None or not sides(principal, row, participant):
        raise NotFound(NOT_FOUND)
    return participant


async def session_for_participant(conn: asyncpg.Connection, principal: Principal, session_id: UUID) -> SessionAccess:
    """A video session as its room needs it; NotFound unless the caller takes part in its consult."""
    session = await repo.session(conn, session_id)
    if session is None:
        raise NotFound("no such session")
    try:
        await require_participant(conn, principal, session.consult_id)
    except NotFound:
        raise NotFound("no such session") from None
    return await describe_session(conn, session)


async def describe_session(conn: asyncpg.Connection, session: SessionRow) -> SessionAccess:
    """A session with its consult's participants (no access check: callers check first)."""
    people = await repo.participants(conn, session.consult_id)
    return SessionAccess(
        consult_id=session.consult_id, session_id=session.id, host_user_id=session.host_user_id,
        participants=[SessionParticipant(user_id=p.user_id, display_name=p.display_name, role=p.role)
                      for p in people],
        ended=session.ended_at is not None,
    )
