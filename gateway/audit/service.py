"""Audit review rules: who may read which rows, chain verification, and FHIR export.

A platform admin reads the whole log; a facility admin reads the rows of the facilities in their subtree
(rows are keyed to the acting user's facility). Verifying the chain is for platform admins. Every export
is itself written to the log.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any
from uuid import UUID

import asyncpg

from common import audit
from common.auth import Principal
from gateway.audit import repository as repo
from gateway.audit.fhir import audit_bundle
from gateway.audit.models import AuditFilter, AuditPage, AuditRecord, ChainVerification
from gateway.identity.admin_service import admin_scope
from gateway.identity.context import RequestContext

MAX_PAGE = 500
MAX_EXPORT = 1000


async def _visible_facilities(conn: asyncpg.Connection, principal: Principal) -> list[UUID] | None:
    scope = await admin_scope(conn, principal)
    return sorted(scope.facility_ids) if scope.facility_ids is not None else None


async def _page(
    conn: asyncpg.Connection, principal: Principal, criteria: AuditFilter, cap: int
) -> tuple[list[AuditRecord], int | None]:
    limit = max(1, min(criteria.limit, cap))
    rows = await repo.search(conn, criteria, facility_ids=await _visible_facilities(conn, principal), limit=limit + 1)
    more = len(rows) > limit
    rows = rows[:limit]
    return rows, (rows[-1].seq if more and rows else None)


async def search(conn: asyncpg.Connection, principal: Principal, criteria: AuditFilter) -> AuditPage:
    """One page of matching rows, newest first."""
    rows, next_before = await _page(conn, principal, criteria, MAX_PAGE)
    return AuditPage(items=rows, next_before_seq=next_before)


async def verify(conn: asyncpg.Connection, principal: Principal, ctx: RequestContext) -> ChainVerification:
    """Walk the whole chain (common.audit.verify_chain) and record that it was checked, and how it ended."""
    report = await audit.verify_chain(conn)
    result = ChainVerification(
        ok=report.ok,
        checked=report.checked,
        first_bad_seq=report.first_bad_seq,
        problem=report.problem,
        verified_at=datetime.now(UTC),
    )
    await audit.write(
        conn,
        ctx.entry(
            principal,
            action="audit.verify",
            outcome="success" if report.ok else "failure",
            object_type="audit_log",
            detail={"ok": report.ok, "checked": report.checked, "first_bad_seq": report.first_bad_seq},
        ),
    )
    return result


async def export(
    conn: asyncpg.Connection,
    principal: Principal,
    criteria: AuditFilter,
    ctx: RequestContext,
    *,
    self_url: str,
    next_url_for: Any,
) -> dict[str, Any]:
    """Matching rows as a FHIR R4 Bundle of AuditEvents (JSON-ready); the export is audited."""
    rows, next_before = await _page(conn, principal, criteria, MAX_EXPORT)
    bundle = audit_bundle(
        rows, self_url=self_url, next_url=next_url_for(next_before) if next_before is not None else None
    )
    filters = {k: str(v) for k, v in criteria.model_dump(exclude_none=True).items()}
    await audit.write(
        conn,
        ctx.entry(
            principal,
            action="audit.export",
            object_type="audit_log",
            detail={
                "format": "fhir-r4-bundle",
                "count": len(rows),
                "filters": filters,
                "first_seq": rows[-1].seq if rows else None,
                "last_seq": rows[0].seq if rows else None,
            },
        ),
    )
    exported: dict[str, Any] = bundle.model_dump(mode="json", exclude_none=True)
    return exported
