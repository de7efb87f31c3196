"""HTTP layer of sharing: share links (owner side and the public read-only path), grants (internal API).

The public path ``/api/imaging/shared/...`` is declared in common/services.py ``public_prefixes``: the gateway
forwards it without a bearer token and the share token (query ``token`` or header ``X-Share-Token``) is
checked here on every request. The token is never a path parameter, so the platform's request audit (which
records path parameters) never sees it; each access is audited here by share id.
"""

from __future__ import annotations

import asyncio
from datetime import datetime
from typing import Any
from uuid import UUID

from fastapi import APIRouter, Depends, Header, Query, Request
from fastapi.responses import Response, StreamingResponse
from pydantic import BaseModel, Field

from common.audit import AuditEntry
from common.auth import Principal, current_principal
from common.errors import Conflict, NotFound
from common.tasks import celery_app
from services.imaging import deid_export, render, sharing, tiering
from services.imaging import repository_retrieve as rr
from services.imaging import service_render as srr
from services.imaging import service_retrieve as sr
from services.imaging.dicomweb import DICOM_JSON, archive_of
from services.imaging.service import Archive

router = APIRouter(prefix="/api/imaging", tags=["imaging-sharing"])
SHARED = "/shared"


class ShareIn(BaseModel):
    expires_at: datetime = Field(description="when the link stops working (required; at most"
                                             " IMAGING_SHARE_MAX_DAYS ahead)")
    note: str = Field(default="", max_length=500)


class GrantIn(BaseModel):
    study_uid: str = Field(min_length=1, max_length=64)
    grantee_facility_id: UUID | None = None
    grantee_user_id: UUID | None = None
    reason: str = Field(pattern="^(consult|share)$")
    reference: str = Field(default="", max_length=200)
    expires_at: datetime | None = None


# -- the owner's side -----------------------------------------------------------------------------


@router.post("/studies/{study}/shares", status_code=201)
async def create_share(study: str, body: ShareIn, request: Request,
                       principal: Principal = Depends(current_principal)) -> dict[str, Any]:
    """A share link for the study (owner facility or its reading centre). The token is in this answer only:
    ``link`` is the web page that shows the study read-only (token in the fragment), ``path`` the API."""
    share, token = await sharing.create_share(archive_of(request), principal, study, expires_at=body.expires_at,
                                              note=body.note)
    await _audit(request, principal, "imaging.share.create", share["id"], "success", {"study": study})
    return {**share, "token": token, "path": f"/api/imaging/shared/study?token={token}",
            "link": sharing.share_link(token)}


@router.get("/studies/{study}/shares")
async def list_shares(study: str, request: Request,
                      principal: Principal = Depends(current_principal)) -> dict[str, Any]:
    return {"items": await sharing.list_shares(archive_of(request), principal, study)}


@router.delete("/studies/{study}/shares/{share_id}")
async def revoke_share(study: str, share_id: str, request: Request,
                       principal: Principal = Depends(current_principal)) -> dict[str, Any]:
    try:
        sid = UUID(share_id)
    except ValueError:
        raise NotFound("no such share") from None
    share = await sharing.revoke_share(archive_of(request), principal, study, sid)
    await _audit(request, principal, "imaging.share.revoke", share["id"], "success", {"study": study})
    return share


# -- grants (internal: the consult service) -----------------------------------------------------------


@router.post("/grants", status_code=201)
async def add_grant(body: GrantIn, request: Request,
                    x_internal_key: str | None = Header(default=None)) -> dict[str, Any]:
    """Grant a facility or user read access to one study (X-Internal-Key)."""
    sharing.check_internal_key(request.app.state.settings.internal_api_key, x_internal_key)
    grant = await sharing.add_grant(archive_of(request), study_uid=body.study_uid,
                                    grantee_facility_id=body.grantee_facility_id,
                                    grantee_user_id=body.grantee_user_id, reason=body.reason,
                                    reference=body.reference, expires_at=body.expires_at)
    await _audit(request, None, "imaging.grant.add", grant["id"], "success",
                 {"study": body.study_uid, "reason": body.reason, "reference": body.reference})
    return grant


@router.delete("/grants", status_code=204, response_class=Response)
async def remove_grant(request: Request, grant_id: str = Query(alias="id"),
                       x_internal_key: str | None = Header(default=None)) -> Response:
    """Withdraw a grant (X-Internal-Key); the study is hidden from the grantee again at once."""
    sharing.check_internal_key(request.app.state.settings.internal_api_key, x_internal_key)
    try:
        gid = UUID(grant_id)
    except ValueError:
        raise NotFound("no such grant") from None
    await sharing.remove_grant(archive_of(request), gid)
    await _audit(request, None, "imaging.grant.remove", str(gid), "success", {})
    return Response(status_code=204)


# -- tiering policy of the caller's facility (tiering.py) -----------------------------------------------------


class TieringIn(BaseModel):
    cold_after_days: int = Field(ge=1, le=36500)


@router.get("/tiering")
async def get_tiering(request: Request, principal: Principal = Depends(current_principal)) -> dict[str, Any]:
    """Days until the caller's facility's studies move to the cold tier (its own, or the default)."""
    return await tiering.facility_policy(archive_of(request).db, principal)


@router.put("/tiering")
async def put_tiering(body: TieringIn, request: Request,
                      principal: Principal = Depends(current_principal)) -> dict[str, Any]:
    """Set the caller's facility's days-until-cold (facility_admin)."""
    policy = await tiering.set_facility_policy(archive_of(request).db, principal, body.cold_after_days)
    await _audit(request, principal, "imaging.tiering.set", str(principal.facility_id), "success",
                 {"cold_after_days": body.cold_after_days})
    return policy


# -- de-identified exports (deid.py, deid_export.py) -----------------------------------------------------


class ExportIn(BaseModel):
    study_uids: list[str] = Field(min_length=1, max_length=100)


@router.post("/exports", status_code=202)
async def create_export(body: ExportIn, request: Request,
                        principal: Principal = Depends(current_principal)) -> dict[str, Any]:
    """Queue a de-identified (PS3.15 basic profile) ZIP of studies the caller may see."""
    export = await deid_export.request_export(archive_of(request), principal, body.study_uids)
    await _audit(request, principal, "imaging.export.create", export["id"], "success",
                 {"studies": len(export["study_uids"])})
    await asyncio.to_thread(celery_app.send_task, "imaging.build_export", args=[export["id"]])
    return export


@router.get("/exports/{export_id}")
async def export_status(export_id: str, request: Request,
                        principal: Principal = Depends(current_principal)) -> dict[str, Any]:
    row = await deid_export.export_of(archive_of(request), principal, _uuid(export_id, "no such export"))
    return deid_export.export_json(row)


@router.get("/exports/{export_id}/download", response_class=Response,
            responses={200: {"content": {"application/zip": {}}}})
async def export_download(export_id: str, request: Request,
                          principal: Principal = Depends(current_principal)) -> Response:
    archive = archive_of(request)
    row = await deid_export.export_of(archive, principal, _uuid(export_id, "no such export"))
    if row["status"] != "ready":
        raise Conflict(f"the export is {row['status']}, not ready")
    await _audit(request, principal, "imaging.export.download", str(row["id"]), "success", {})
    return StreamingResponse(archive.store.get(row["object_key"]), media_type="application/zip",
                             headers={"Content-Length": str(row["size_bytes"]),
                                      "Content-Disposition": f'attachment; filename="export-{row["id"]}.zip"'})


def _uuid(text: str, missing: str) -> UUID:
    try:
        return UUID(text)
    except ValueError:
        raise NotFound(missing) from None


# -- the public, read-only path of a share link ---------------------------------------------------------


async def share_access(request: Request, token: str | None = Query(default=None),
                       x_share_token: str | None = Header(default=None)) -> sharing.ShareAccess:
    """The share of the request's token, or 404 (unknown) / 410 (revoked, expired); audited either way."""
    archive = archive_of(request)
    try:
        access = await sharing.resolve_share(archive, token or x_share_token)
    except sharing.ShareRefused as exc:
        await _audit(request, None, "imaging.share.access", str(exc.share_id), "denied",
                     {"reason": exc.error.code, "route": request.url.path})
        raise exc.error from None
    except NotFound:
        await _audit(request, None, "imaging.share.access", None, "denied", {"reason": "unknown token"})
        raise
    await _audit(request, None, "imaging.share.access", str(access.share_id), "success",
                 {"study": access.study_uid, "route": request.url.path})
    return access


async def _instances(archive: Archive, access: sharing.ShareAccess, series: str | None = None,
                     sop: str | None = None) -> list[rr.StoredInstance]:
    principal, facilities = access.scope()
    async with archive.db.transaction(principal) as conn:
        found = await rr.instances(conn, facilities, access.study_uid, series, sop)
    if not found:
        raise NotFound("no such instance" if sop else "no such series" if series else "no such study")
    return found


@router.get(SHARED + "/study")
async def shared_study(request: Request, access: sharing.ShareAccess = Depends(share_access)) -> dict[str, Any]:
    """The shared study: its UID and its series with their instances."""
    found = await _instances(archive_of(request), access)
    series: dict[str, dict[str, Any]] = {}
    for inst in found:
        entry = series.setdefault(inst.series_uid, {"series_uid": inst.series_uid, "instances": []})
        entry["instances"].append({"sop_instance_uid": inst.sop_instance_uid, "sop_class_uid": inst.sop_class_uid,
                                   "frames": inst.number_of_frames, "rows": inst.rows, "columns": inst.columns})
    return {"share_id": str(access.share_id), "study_uid": access.study_uid, "series": list(series.values()),
            "num_instances": len(found),
            "expires_at": access.expires_at.isoformat() if access.expires_at else None}


@router.get(SHARED + "/metadata", response_class=Response,
            responses={200: {"content": {DICOM_JSON: {}}}})
async def shared_metadata(request: Request, access: sharing.ShareAccess = Depends(share_access)) -> Response:
    """The DICOM JSON of the study's instances (bulk data is not served on the share path)."""
    archive = archive_of(request)
    principal, facilities = access.scope()
    async with archive.db.transaction(principal) as conn:
        texts = await rr.metadata(conn, facilities, access.study_uid)
    if not texts:
        raise NotFound("no such study")
    return Response(("[" + ",".join(texts) + "]").encode(), media_type=DICOM_JSON)


@router.get(SHARED + "/thumbnail", response_class=Response, responses={200: {"content": {"image/jpeg": {}}}})
async def shared_thumbnail(request: Request, access: sharing.ShareAccess = Depends(share_access)) -> Response:
    archive = archive_of(request)
    inst = srr.representative(await _instances(archive, access))
    if inst is None:
        raise NotFound("no image in this study")
    opts = render.options("image/jpeg", None, None, None, default_viewport=srr.THUMBNAIL_VIEWPORT,
                          default_quality=srr.THUMBNAIL_QUALITY)
    image = (await srr.render_instance(archive, inst, [1], opts))[0]
    return Response(image, media_type=opts.media, headers={"Cache-Control": "private, max-age=300"})


@router.get(SHARED + "/archive", response_class=Response, responses={200: {"content": {"application/zip": {}}}})
async def shared_archive(request: Request, access: sharing.ShareAccess = Depends(share_access)) -> Response:
    archive = archive_of(request)
    found = await _instances(archive, access)
    return StreamingResponse(sr.study_zip(archive, found), media_type="application/zip",
                             headers={"Content-Disposition": f'attachment; filename="{access.study_uid}.zip"'})


@router.get(SHARED + "/series/{series}/instances/{sop}", response_class=Response,
            responses={200: {"content": {"application/dicom": {}}}})
async def shared_instance(series: str, sop: str, request: Request,
                          access: sharing.ShareAccess = Depends(share_access)) -> Response:
    """One original instance, byte for byte (application/dicom)."""
    archive = archive_of(request)
    inst = (await _instances(archive, access, series, sop))[0]
    plan = sr.InstancePlan(inst, inst.transfer_syntax_uid)
    return StreamingResponse(sr.instance_body(archive, plan), media_type="application/dicom",
                             headers={"Content-Length": str(inst.size_bytes),
                                      "Content-Disposition": f'attachment; filename="{sop}.dcm"'})


@router.get(SHARED + "/series/{series}/instances/{sop}/rendered", response_class=Response,
            responses={200: {"content": {"image/jpeg": {}, "image/png": {}}}})
async def shared_rendered(series: str, sop: str, request: Request, frame: str | None = Query(default=None),
                          window: str | None = Query(default=None), viewport: str | None = Query(default=None),
                          quality: str | None = Query(default=None),
                          access: sharing.ShareAccess = Depends(share_access)) -> Response:
    """One frame rendered (JPEG by default; PNG when Accept asks), with window/viewport/quality."""
    archive = archive_of(request)
    inst = (await _instances(archive, access, series, sop))[0]
    opts = srr.OptionsBuilder(lambda: render.options(request.headers.get("accept"), window, viewport, quality))()
    image = (await srr.render_instance(archive, inst, [srr.frame_number(frame)], opts))[0]
    return Response(image, media_type=opts.media, headers={"Cache-Control": "private, max-age=300"})


async def _audit(request: Request, principal: Principal | None, action: str, object_id: str | None, outcome: str,
                 detail: dict[str, Any]) -> None:
    entry = AuditEntry.for_principal(principal, source="imaging", action=action, outcome=outcome,
                                     object_type="imaging_" + action.split(".")[1],
                                     object_id=object_id, detail=detail,
                                     request_id=request.headers.get("x-request-id"))
    await request.app.state.audit.record(entry)
