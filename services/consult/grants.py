"""Read access of the consultant to exactly the consult's attached items, pushed to the owning services.

On accept (and on reassign) :func:`plan` writes one ``pending`` row in consult.item_grants per attachment in the
accepting transaction; :func:`apply` pushes them after the commit through the owning service's internal grant
API (imaging ``POST /api/imaging/grants``, ECG ``POST /api/ecg/grants``) and marks them ``active`` with the
remote grant id. Close and cancel mark them for withdrawal (:func:`request_revocation`), done by :func:`apply`
as well (``DELETE .../grants?id=``). The beat task ``consult.apply_grants`` runs :func:`apply` for whatever is
still pending, so a service that was down gets its grant (or its revocation) later. Every grant carries
``expires_at`` (CONSULT_ACCESS_DAYS after acceptance): access ends even if a revocation is delayed.

Pathology cases: there is no pathology service yet, so their grants stay ``pending`` with that reason.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import UUID

import asyncpg

from common.auth import system_principal
from common.db import Database
from common.errors import Unavailable
from services.consult import remote
from services.consult import repository_items as items
from services.consult.schemas import ConsultRow, GrantRow
from services.consult.settings import consult_settings

log = logging.getLogger("telehealth.consult.grants")
PATHOLOGY_PENDING = "no pathology service yet: the grant is applied once it exists"


async def plan(conn: asyncpg.Connection, consult: ConsultRow) -> None:
    """Pending grants of every attachment for the consult's consultant (earlier grantees' are withdrawn)."""
    await items.request_revocation(conn, consult.id)
    if consult.consultant_id is None:
        return
    expires_at = datetime.now(UTC) + timedelta(days=consult_settings().access_days)
    for a in await items.attachments(conn, consult.id):
        await items.insert_grant(conn, consult, a, consult.consultant_id, expires_at,
                                 last_error=PATHOLOGY_PENDING if a.kind == "pathology_case" else None)


async def request_revocation(conn: asyncpg.Connection, consult: ConsultRow) -> None:
    await items.request_revocation(conn, consult.id)


async def _apply_one(conn: asyncpg.Connection, g: GrantRow, now: datetime, max_attempts: int) -> str:
    if g.status == "active" and g.revoke_requested_at is not None:
        try:
            if g.remote_grant_id:
                await remote.remove_grant(g.kind, g.remote_grant_id)
        except Unavailable as exc:
            await items.mark_grant(conn, g.id, attempts=g.attempts + 1, last_error=exc.detail[:500])
            return "retry"
        await items.mark_grant(conn, g.id, status="revoked", revoked_at=now, last_error=None)
        return "revoked"
    if g.expires_at <= now:
        await items.mark_grant(conn, g.id, status="revoked", revoked_at=now, last_error="expired before applied")
        return "expired"
    if g.kind == "pathology_case":
        return "waiting"
    try:
        remote_id = await remote.add_grant(g.kind, g.ref, g.grantee_user_id, g.consult_id, g.expires_at)
    except remote.GrantRefused as exc:
        await items.mark_grant(conn, g.id, status="failed", attempts=g.attempts + 1, last_error=str(exc)[:500])
        return "failed"
    except Unavailable as exc:
        gave_up = g.attempts + 1 >= max_attempts
        await items.mark_grant(conn, g.id, attempts=g.attempts + 1, last_error=exc.detail[:500],
                               **({"status": "failed"} if gave_up else {}))
        return "failed" if gave_up else "retry"
    await items.mark_grant(conn, g.id, status="active", remote_grant_id=remote_id, applied_at=now,
                           attempts=g.attempts + 1, last_error=None)
    return "active"


async def apply(db: Database, consult_id: UUID | None = None) -> dict[str, Any]:
    """Push pending grants and withdraw those marked for it (one consult, or all); counts by outcome."""
    counts: dict[str, int] = {}
    max_attempts = consult_settings().grant_max_attempts
    async with db.transaction(system_principal()) as conn:
        now = datetime.now(UTC)
        for g in await items.work(conn, consult_id):
            outcome = await _apply_one(conn, g, now, max_attempts)
            counts[outcome] = counts.get(outcome, 0) + 1
    return counts


async def apply_for_consult(db: Database, consult_id: UUID) -> None:
    """After a commit: try the consult's grant work now; the beat task retries whatever is left."""
    try:
        counts = await apply(db, consult_id)
    except Exception:
        log.exception("applying grants failed; consult.apply_grants retries", extra={"consult_id": str(consult_id)})
        return
    if counts.get("retry"):
        log.warning("some grants are waiting for their service", extra={"consult_id": str(consult_id), **counts})
