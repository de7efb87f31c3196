"""HTTP layer of the imaging service outside DICOMweb: capabilities, a study as ZIP, WADO-URI. Thin, no logic."""

from __future__ import annotations

from urllib.parse import unquote

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import Response, StreamingResponse

from common.auth import Principal, current_principal
from common.errors import BadRequest
from services.imaging import service_retrieve as sr
from services.imaging.dicomweb import archive_of

router = APIRouter(prefix="/api/imaging", tags=["imaging"])
wado_uri_router = APIRouter(tags=["dicomweb"])


@router.get("/capabilities")
async def capabilities(principal: Principal = Depends(current_principal)) -> dict[str, object]:
    """What this service offers today."""
    return {"service": "imaging", "status": "archive",
            "features": ["stow-rs", "qido-rs", "wado-rs", "wado-rs-metadata", "frames", "bulkdata", "wado-uri",
                         "study-zip"]}


@router.get("/studies/{study}/archive", response_class=Response,
            responses={200: {"content": {"application/zip": {}}}})
async def study_archive(study: str, request: Request, principal: Principal = Depends(current_principal)) -> Response:
    """The study's original instances as one ZIP (<study>/<series>/<sop>.dcm), streamed from object storage."""
    archive = archive_of(request)
    instances = await sr.find_instances(archive, principal, study)
    return StreamingResponse(sr.study_zip(archive, instances), media_type="application/zip",
                             headers={"Content-Disposition": f'attachment; filename="{study}.zip"'})


@wado_uri_router.get("/wado", response_class=Response, responses={200: {"content": {"application/dicom": {}}}})
async def wado_uri(
    request: Request,
    request_type: str = Query(alias="requestType"),
    study_uid: str = Query(alias="studyUID"),
    series_uid: str = Query(alias="seriesUID"),
    object_uid: str = Query(alias="objectUID"),
    content_type: str | None = Query(default=None, alias="contentType"),
    transfer_syntax: str | None = Query(default=None, alias="transferSyntax"),
    principal: Principal = Depends(current_principal),
) -> Response:
    """WADO-URI (PS3.18 9): ``contentType=application/dicom`` answers the instance (as stored, or in
    ``transferSyntax``). Rendered images (image/jpeg, the default) are not served yet: 406."""
    if request_type != "WADO":
        raise BadRequest("requestType must be WADO")
    wanted = [unquote(t).strip().lower() for t in (content_type or "image/jpeg").split(",")]
    archive = archive_of(request)
    instances = await sr.find_instances(archive, principal, study_uid, series_uid, object_uid)
    if "application/dicom" not in wanted:
        raise sr.NotAcceptable(f"contentType {', '.join(wanted)} is not served yet (rendering arrives with the"
                               " viewer work); ask for contentType=application/dicom")
    accept = f'multipart/related; type="application/dicom"; transfer-syntax={transfer_syntax or "*"}'
    plan = sr.negotiate(accept, instances, archive.settings.max_transcode_bytes)[0]
    headers = {"Content-Disposition": f'attachment; filename="{object_uid}.dcm"'}
    if not plan.transcode:
        headers["Content-Length"] = str(plan.instance.size_bytes)
    return StreamingResponse(sr.instance_body(archive, plan), media_type="application/dicom", headers=headers)
