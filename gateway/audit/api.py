"""HTTP of audit review under ``/api/audit``: search, chain verification, FHIR AuditEvent export."""

from __future__ import annotations

from datetime import datetime
from uuid import UUID

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import JSONResponse

from common.auth import Principal
from common.db import Database
from common.errors import Invalid
from gateway.audit import service
from gateway.audit.models import AuditFilter, AuditPage, ChainVerification, Outcome
from gateway.identity.context import RequestContext
from gateway.identity.deps import database, require_admin, require_platform_admin

router = APIRouter(prefix="/api/audit", tags=["audit"])

FHIR_JSON = "application/fhir+json"


def audit_filter(
    since: datetime | None = Query(None, description="from this time (inclusive, ISO 8601 with zone)"),
    until: datetime | None = Query(None, description="before this time (exclusive)"),
    actor_id: UUID | None = Query(None),
    actor_name: str | None = Query(None, max_length=64),
    facility_id: UUID | None = Query(None),
    action: str | None = Query(None, max_length=200, description="prefix, e.g. `auth.` or `GET /api/ecg`"),
    outcome: Outcome | None = Query(None),
    source: str | None = Query(None, max_length=40, description="gateway, imaging, ecg, ..."),
    object_type: str | None = Query(None, max_length=40),
    object_id: str | None = Query(None, max_length=200),
    before_seq: int | None = Query(None, ge=1, description="paging cursor from next_before_seq"),
    limit: int = Query(100, ge=1, le=1000),
) -> AuditFilter:
    if since and until and since >= until:
        raise Invalid("since must be earlier than until")
    for name, value in (("since", since), ("until", until)):
        if value is not None and value.tzinfo is None:
            raise Invalid(f"{name}: give a time zone (e.g. +08:00 or Z)")
    return AuditFilter(
        since=since,
        until=until,
        actor_id=actor_id,
        actor_name=actor_name,
        facility_id=facility_id,
        action=action,
        outcome=outcome,
        source=source,
        object_type=object_type,
        object_id=object_id,
        before_seq=before_seq,
        limit=limit,
    )


@router.get("/events", response_model=AuditPage)
async def search_events(
    criteria: AuditFilter = Depends(audit_filter),
    principal: Principal = Depends(require_admin),
    db: Database = Depends(database),
) -> AuditPage:
    """Search the audit log, newest first (at most 500 a page; page on with `before_seq`).
    Facility admins see the rows of their own facility's subtree."""
    async with db.transaction(principal) as conn:
        return await service.search(conn, principal, criteria)


@router.get("/verify", response_model=ChainVerification)
async def verify_chain(
    request: Request,
    principal: Principal = Depends(require_platform_admin),
    db: Database = Depends(database),
) -> ChainVerification:
    """Check the whole hash chain: reports the first edited, missing or reordered row, if any."""
    async with db.transaction(principal) as conn:
        return await service.verify(conn, principal, RequestContext.of(request))


@router.get("/export", responses={200: {"content": {FHIR_JSON: {}}}})
async def export_events(
    request: Request,
    criteria: AuditFilter = Depends(audit_filter),
    principal: Principal = Depends(require_admin),
    db: Database = Depends(database),
) -> JSONResponse:
    """The matching rows as a FHIR R4 Bundle of AuditEvent resources (IHE ATNA), at most 1000 per call;
    the Bundle's `next` link pages on. The export itself is audited."""

    def next_url(before: int) -> str:
        return str(request.url.include_query_params(before_seq=before))

    async with db.transaction(principal) as conn:
        bundle = await service.export(
            conn, principal, criteria, RequestContext.of(request), self_url=str(request.url), next_url_for=next_url
        )
    return JSONResponse(bundle, media_type=FHIR_JSON, headers={"Cache-Control": "no-store"})
