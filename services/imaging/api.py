"""HTTP layer of the imaging service outside DICOMweb: capabilities, a study as ZIP, WADO-URI. Thin, no logic."""

from __future__ import annotations

from urllib.parse import unquote

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import Response, StreamingResponse

from common.auth import Principal, current_principal
from common.errors import BadRequest
from services.imaging import render
from services.imaging import service_render as srr
from services.imaging import service_retrieve as sr
from services.imaging.dicomweb import archive_of

router = APIRouter(prefix="/api/imaging", tags=["imaging"])
wado_uri_router = APIRouter(tags=["dicomweb"])


@router.get("/capabilities")
async def capabilities(principal: Principal = Depends(current_principal)) -> dict[str, object]:
    """What this service offers today."""
    return {"service": "imaging", "status": "archive",
            "features": ["stow-rs", "qido-rs", "wado-rs", "wado-rs-metadata", "frames", "bulkdata", "wado-uri",
                         "study-zip", "rendered", "thumbnail"]}


@router.get("/studies/{study}/archive", response_class=Response,
            responses={200: {"content": {"application/zip": {}}}})
async def study_archive(study: str, request: Request, principal: Principal = Depends(current_principal)) -> Response:
    """The study's original instances as one ZIP (<study>/<series>/<sop>.dcm), streamed from object storage."""
    archive = archive_of(request)
    instances = await sr.find_instances(archive, principal, study)
    return StreamingResponse(sr.study_zip(archive, instances), media_type="application/zip",
                             headers={"Content-Disposition": f'attachment; filename="{study}.zip"'})


@wado_uri_router.get("/wado", response_class=Response,
                     responses={200: {"content": {"application/dicom": {}, "image/jpeg": {}, "image/png": {}}}})
async def wado_uri(
    request: Request,
    request_type: str = Query(alias="requestType"),
    study_uid: str = Query(alias="studyUID"),
    series_uid: str = Query(alias="seriesUID"),
    object_uid: str = Query(alias="objectUID"),
    content_type: str | None = Query(default=None, alias="contentType"),
    transfer_syntax: str | None = Query(default=None, alias="transferSyntax"),
    frame_number: str | None = Query(default=None, alias="frameNumber"),
    window_center: str | None = Query(default=None, alias="windowCenter"),
    window_width: str | None = Query(default=None, alias="windowWidth"),
    rows: str | None = Query(default=None),
    columns: str | None = Query(default=None),
    image_quality: str | None = Query(default=None, alias="imageQuality"),
    principal: Principal = Depends(current_principal),
) -> Response:
    """WADO-URI (PS3.18 9): ``contentType=application/dicom`` answers the instance (as stored, or in
    ``transferSyntax``); ``image/jpeg`` (the default for images) or ``image/png`` a rendered frame
    (``frameNumber``, ``windowCenter``/``windowWidth``, ``rows``/``columns`` as a fitting box,
    ``imageQuality``). Without contentType an instance without pixel data comes as application/dicom."""
    if request_type != "WADO":
        raise BadRequest("requestType must be WADO")
    archive = archive_of(request)
    instances = await sr.find_instances(archive, principal, study_uid, series_uid, object_uid)
    inst = instances[0]
    default = "image/jpeg" if inst.has_pixels else "application/dicom"
    wanted = [unquote(t).split(";")[0].strip().lower() for t in (content_type or default).split(",")]
    chosen = next((t for t in wanted if t in ("application/dicom", *render.MEDIA)), None)
    if chosen is None:
        raise sr.NotAcceptable(f"contentType {', '.join(wanted)} is not served; ask for application/dicom,"
                               " image/jpeg or image/png")
    if chosen != "application/dicom":
        if (window_center is None) != (window_width is None):
            raise BadRequest("windowCenter and windowWidth go together")
        window = f"{window_center},{window_width}" if window_center is not None else None
        viewport = f"{columns or ''},{rows or ''}" if (rows or columns) else None
        opts = render.options(chosen, window, viewport, image_quality)
        image = (await srr.render_instance(archive, inst, [srr.frame_number(frame_number)], opts))[0]
        return Response(image, media_type=chosen, headers={"Cache-Control": "private, max-age=3600"})
    accept = f'multipart/related; type="application/dicom"; transfer-syntax={transfer_syntax or "*"}'
    plan = sr.negotiate(accept, instances, archive.settings.max_transcode_bytes)[0]
    headers = {"Content-Disposition": f'attachment; filename="{object_uid}.dcm"'}
    if not plan.transcode:
        headers["Content-Length"] = str(plan.instance.size_bytes)
    return StreamingResponse(sr.instance_body(archive, plan), media_type="application/dicom", headers=headers)
