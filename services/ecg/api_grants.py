"""HTTP layer of recording grants (internal: the consult service, ``X-Internal-Key``). Thin."""

from __future__ import annotations

from datetime import datetime
from typing import Any
from uuid import UUID

from fastapi import APIRouter, Header, Query, Request
from fastapi.responses import Response
from pydantic import BaseModel, Field

from common.audit import AuditEntry
from common.errors import NotFound
from services.ecg import grants

router = APIRouter(prefix="/api/ecg", tags=["ecg-grants"])


class GrantIn(BaseModel):
    recording_id: UUID
    grantee_facility_id: UUID | None = None
    grantee_user_id: UUID | None = None
    reason: str = Field(pattern="^(consult|share)$")
    reference: str = Field(default="", max_length=200)
    expires_at: datetime | None = None


@router.post("/grants", status_code=201)
async def add_grant(body: GrantIn, request: Request,
                    x_internal_key: str | None = Header(default=None)) -> dict[str, Any]:
    """Grant a user or facility read access to one recording (detail, signal, report)."""
    grants.check_internal_key(request.app.state.settings.internal_api_key, x_internal_key)
    grant = await grants.add_grant(request.app.state.db, recording_id=body.recording_id,
                                   grantee_facility_id=body.grantee_facility_id, grantee_user_id=body.grantee_user_id,
                                   reason=body.reason, reference=body.reference, expires_at=body.expires_at)
    await _audit(request, "ecg.grant.add", grant["id"],
                 {"recording_id": str(body.recording_id), "reason": body.reason, "reference": body.reference})
    return grant


@router.delete("/grants", status_code=204, response_class=Response)
async def remove_grant(request: Request, grant_id: str = Query(alias="id"),
                       x_internal_key: str | None = Header(default=None)) -> Response:
    """Withdraw a grant; the recording is hidden from the grantee again at once."""
    grants.check_internal_key(request.app.state.settings.internal_api_key, x_internal_key)
    try:
        gid = UUID(grant_id)
    except ValueError:
        raise NotFound("no such grant") from None
    await grants.remove_grant(request.app.state.db, gid)
    await _audit(request, "ecg.grant.remove", str(gid), {})
    return Response(status_code=204)


async def _audit(request: Request, action: str, object_id: str, detail: dict[str, Any]) -> None:
    await request.app.state.audit.record(AuditEntry.for_principal(
        None, source="ecg", action=action, outcome="success", object_type="ecg_grant", object_id=object_id,
        detail=detail, request_id=request.headers.get("x-request-id")))
