"""WADO-RS (PS3.18 10.4): retrieve studies, series and instances, their metadata, frames and bulk data.

Instances come as ``multipart/related; type="application/dicom"``. The transfer syntax follows the Accept
header: ``transfer-syntax=*`` (or the stored one) sends the original bytes; no transfer-syntax means
Explicit VR Little Endian (the PS3.18 default), transcoded when needed; what cannot be produced is 406.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import Response, StreamingResponse

from common.auth import Principal, current_principal
from services.imaging import service_frames as sf
from services.imaging import service_retrieve as sr
from services.imaging.dicomweb import PREFIX, archive_of, dicom_json, dicomweb_base
from services.imaging.dicomweb_multipart import closing, new_boundary, part_head

router = APIRouter(prefix=PREFIX, tags=["dicomweb"])
MULTIPART_DOC: dict[str, Any] = {"responses": {"200": {"content": {'multipart/related; type="application/dicom"': {}}}}}
METADATA_DOC: dict[str, Any] = {"responses": {"200": {"content": {"application/dicom+json": {}}}}}
FRAMES_DOC: dict[str, Any] = {
    "responses": {"200": {"content": {'multipart/related; type="application/octet-stream"': {}}}}}


async def _retrieve(request: Request, principal: Principal, study: str, series: str | None = None,
                    sop: str | None = None) -> Response:
    archive = archive_of(request)
    base = dicomweb_base(request)
    plan = await sr.plan_retrieval(archive, principal, request.headers.get("accept"), study, series, sop, base=base)
    headers = {"Content-Length": str(plan.length)} if plan.length is not None else {}
    return StreamingResponse(
        sr.stream_retrieval(archive, plan, base=base),
        media_type=f'multipart/related; type="application/dicom"; boundary={plan.boundary}', headers=headers)


async def _metadata(request: Request, principal: Principal, study: str, series: str | None = None,
                    sop: str | None = None) -> Response:
    body = await sr.metadata(archive_of(request), principal, request.headers.get("accept"), dicomweb_base(request),
                             study, series, sop)
    return dicom_json(body)


@router.get("/studies/{study}", response_class=Response, openapi_extra=MULTIPART_DOC)
async def retrieve_study(study: str, request: Request, principal: Principal = Depends(current_principal)) -> Response:
    """All instances of a study."""
    return await _retrieve(request, principal, study)


@router.get("/studies/{study}/series/{series}", response_class=Response, openapi_extra=MULTIPART_DOC)
async def retrieve_series(study: str, series: str, request: Request,
                          principal: Principal = Depends(current_principal)) -> Response:
    """All instances of a series."""
    return await _retrieve(request, principal, study, series)


@router.get("/studies/{study}/series/{series}/instances/{sop}", response_class=Response,
            openapi_extra=MULTIPART_DOC)
async def retrieve_instance(study: str, series: str, sop: str, request: Request,
                            principal: Principal = Depends(current_principal)) -> Response:
    """One instance."""
    return await _retrieve(request, principal, study, series, sop)


@router.get("/studies/{study}/metadata", response_class=Response, openapi_extra=METADATA_DOC)
async def study_metadata(study: str, request: Request, principal: Principal = Depends(current_principal)) -> Response:
    """DICOM JSON of every instance of the study, bulk data as BulkDataURIs (from the index: no file read)."""
    return await _metadata(request, principal, study)


@router.get("/studies/{study}/series/{series}/metadata", response_class=Response, openapi_extra=METADATA_DOC)
async def series_metadata(study: str, series: str, request: Request,
                          principal: Principal = Depends(current_principal)) -> Response:
    """DICOM JSON of every instance of the series."""
    return await _metadata(request, principal, study, series)


@router.get("/studies/{study}/series/{series}/instances/{sop}/metadata", response_class=Response,
            openapi_extra=METADATA_DOC)
async def instance_metadata(study: str, series: str, sop: str, request: Request,
                            principal: Principal = Depends(current_principal)) -> Response:
    """DICOM JSON of one instance."""
    return await _metadata(request, principal, study, series, sop)


async def _frames_response(request: Request, principal: Principal, study: str, series: str, sop: str,
                           frames: str | None) -> Response:
    archive = archive_of(request)
    plan = await sf.plan_frames(archive, principal, request.headers.get("accept"), study, series, sop, frames)
    media = f'multipart/related; type="{plan.content_type.split(";")[0]}"; boundary={plan.boundary}'
    if plan.mode == "range":
        return StreamingResponse(sf.stream_range_frames(archive, plan), media_type=media)
    data = await sf.prepare_frames(archive, plan)
    return StreamingResponse(sf.frame_parts(plan, data or []), media_type=media)


@router.get("/studies/{study}/series/{series}/instances/{sop}/frames/{frames}", response_class=Response,
            openapi_extra=FRAMES_DOC)
async def retrieve_frames(study: str, series: str, sop: str, frames: str, request: Request,
                          principal: Principal = Depends(current_principal)) -> Response:
    """Frames (``/frames/1,2,3``): uncompressed application/octet-stream by default, or as stored when the
    Accept header names their media type or ``transfer-syntax=*``."""
    return await _frames_response(request, principal, study, series, sop, frames)


@router.get("/studies/{study}/series/{series}/instances/{sop}/bulkdata/{tag_path:path}", response_class=Response,
            openapi_extra=FRAMES_DOC)
async def retrieve_bulkdata(study: str, series: str, sop: str, tag_path: str, request: Request,
                            principal: Principal = Depends(current_principal)) -> Response:
    """The value of a BulkDataURI of the metadata; pixel data comes as its frames."""
    if sf.is_pixel_path(tag_path):
        return await _frames_response(request, principal, study, series, sop, None)
    value = await sf.bulk_value(archive_of(request), principal, request.headers.get("accept"), study, series, sop,
                                tag_path)
    boundary = new_boundary()
    body = part_head(boundary, "application/octet-stream", length=len(value), first=True) + value + closing(boundary)
    return Response(body, media_type=f'multipart/related; type="application/octet-stream"; boundary={boundary}')
