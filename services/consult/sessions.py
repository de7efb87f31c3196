"""Video sessions of a consult: starting one moves the consult to in_session, ending it moves it back.

The room itself (signaling, media) lives in services/consult/rooms/ and finds its session through
access.session_for_participant. The host is the consultant (or, without one, whoever started the session).
One session of a consult is open at a time.
"""

from __future__ import annotations

from uuid import UUID

from common.auth import Principal
from common.db import Database
from common.errors import Conflict, NotFound
from services.consult import access, service
from services.consult import repository as repo
from services.consult.schemas import SessionAccess


async def start(db: Database, principal: Principal, consult_id: UUID) -> SessionAccess:
    """Open a session (accepted or scheduled -> in_session); 409 when one is open already."""
    async with db.transaction(principal) as conn:
        c = await access.visible_consult(conn, principal, consult_id, lock=True)
        if await repo.open_session(conn, c.id) is not None:
            raise Conflict(f"a session of this consult is open already; current state: {c.status}",
                           code="session_open")
        host = c.consultant_id or principal.user_id
        session_id = await repo.insert_session(conn, c, started_by=principal.user_id, host_user_id=host)
        await service.transition(conn, principal, c, "start_session", session_id=str(session_id))
        s = await repo.session(conn, session_id)
        assert s is not None
        return await access.describe_session(conn, s)


async def end(db: Database, principal: Principal, session_id: UUID) -> SessionAccess:
    """End a session (idempotent); the consult returns to where it was before the session."""
    async with db.transaction(principal) as conn:
        s = await repo.session(conn, session_id, lock=True)
        if s is None:
            raise NotFound("no such session")
        try:
            c = await access.visible_consult(conn, principal, s.consult_id, lock=True)
        except NotFound:
            raise NotFound("no such session") from None
        if s.ended_at is None:
            await service.transition(conn, principal, c, "end_session", session_id=str(session_id))
            await repo.end_session(conn, session_id, principal.user_id)
        ended = await repo.session(conn, session_id)
        assert ended is not None
        return await access.describe_session(conn, ended)
