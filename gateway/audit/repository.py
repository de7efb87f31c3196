"""SQL of the audit search (``audit.events``; the application role may only INSERT and SELECT)."""

from __future__ import annotations

from typing import Any
from uuid import UUID

import asyncpg

from gateway.audit.models import AuditFilter, AuditRecord

_COLUMNS = (
    "seq, occurred_at, source, actor_id, actor_name, actor_role, facility_id, action, object_type, object_id,"
    " outcome, status_code, client_addr, request_id, detail, encode(hash, 'hex') AS hash"
)


def _like_prefix(value: str) -> str:
    return value.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"


async def search(
    conn: asyncpg.Connection, criteria: AuditFilter, *, facility_ids: list[UUID] | None, limit: int
) -> list[AuditRecord]:
    """Rows matching ``criteria``, newest first, at most ``limit``; ``facility_ids`` (when not None)
    restricts to rows of those facilities."""
    conditions: list[str] = []
    args: list[Any] = []

    def add(sql: str, value: Any) -> None:
        args.append(value)
        conditions.append(sql.replace("?", f"${len(args)}"))

    if facility_ids is not None:
        add("facility_id = ANY(?::uuid[])", facility_ids)
    if criteria.since is not None:
        add("occurred_at >= ?", criteria.since)
    if criteria.until is not None:
        add("occurred_at < ?", criteria.until)
    if criteria.actor_id is not None:
        add("actor_id = ?", criteria.actor_id)
    if criteria.actor_name:
        add("actor_name = ?", criteria.actor_name)
    if criteria.facility_id is not None:
        add("facility_id = ?", criteria.facility_id)
    if criteria.action:
        add("action LIKE ?", _like_prefix(criteria.action))
    if criteria.outcome:
        add("outcome = ?", criteria.outcome)
    if criteria.source:
        add("source = ?", criteria.source)
    if criteria.object_type:
        add("object_type = ?", criteria.object_type)
    if criteria.object_id:
        add("object_id = ?", criteria.object_id)
    if criteria.before_seq is not None:
        add("seq < ?", criteria.before_seq)
    where = (" WHERE " + " AND ".join(conditions)) if conditions else ""
    args.append(limit)
    rows = await conn.fetch(f"SELECT {_COLUMNS} FROM audit.events{where} ORDER BY seq DESC LIMIT ${len(args)}", *args)
    return [AuditRecord.model_validate(dict(r)) for r in rows]
