"""QIDO-RS (PS3.18 10.6): search studies, series and instances, answered as application/dicom+json.

Matching keys are DICOM keywords or tags (``PatientName=王*``, ``00100020=123``); ``includefield`` (or
``all``), ``limit``, ``offset`` and ``fuzzymatching`` are understood. Keys the archive does not match on at
that level are ignored with a ``Warning: 299`` header, as PS3.18 asks.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import Response

from common.auth import Principal, current_principal
from services.imaging import service_query
from services.imaging.dicomweb import PREFIX, archive_of, dicom_json, dicomweb_base
from services.imaging.service_query import Level
from services.imaging.service_retrieve import NotAcceptable

router = APIRouter(prefix=PREFIX, tags=["dicomweb"])
QIDO_DOC: dict[str, Any] = {"responses": {"200": {"content": {"application/dicom+json": {}}}}}


def _check_accept(request: Request) -> None:
    accept = request.headers.get("accept", "")
    if accept and not any(t in accept for t in ("application/dicom+json", "application/json", "*/*",
                                                "application/*")):
        raise NotAcceptable("QIDO-RS answers application/dicom+json only")


async def _search(request: Request, principal: Principal, level: Level, study: str | None = None,
                  series: str | None = None) -> Response:
    _check_accept(request)
    archive = archive_of(request)
    query = service_query.parse_query(level, list(request.query_params.multi_items()), study_uid=study,
                                      series_uid=series, default_limit=archive.settings.qido_default_limit,
                                      max_limit=archive.settings.qido_max_limit)
    result = await service_query.search(archive, principal, query, dicomweb_base(request))
    return dicom_json(result.body, warnings=result.warnings)


@router.get("/studies", response_class=Response, openapi_extra=QIDO_DOC)
async def search_studies(request: Request, principal: Principal = Depends(current_principal)) -> Response:
    """Studies the caller may see (PatientID, PatientName, StudyDate, AccessionNumber, ModalitiesInStudy...)."""
    return await _search(request, principal, "study")


@router.get("/series", response_class=Response, openapi_extra=QIDO_DOC)
async def search_all_series(request: Request, principal: Principal = Depends(current_principal)) -> Response:
    """Series of any visible study; study attributes are included and may be matched on."""
    return await _search(request, principal, "series")


@router.get("/instances", response_class=Response, openapi_extra=QIDO_DOC)
async def search_all_instances(request: Request, principal: Principal = Depends(current_principal)) -> Response:
    """Instances of any visible study."""
    return await _search(request, principal, "instance")


@router.get("/studies/{study}/series", response_class=Response, openapi_extra=QIDO_DOC)
async def search_study_series(study: str, request: Request,
                              principal: Principal = Depends(current_principal)) -> Response:
    """Series of one study (404 when the study is not the caller's to see)."""
    return await _search(request, principal, "series", study)


@router.get("/studies/{study}/instances", response_class=Response, openapi_extra=QIDO_DOC)
async def search_study_instances(study: str, request: Request,
                                 principal: Principal = Depends(current_principal)) -> Response:
    """Instances of one study."""
    return await _search(request, principal, "instance", study)


@router.get("/studies/{study}/series/{series}/instances", response_class=Response, openapi_extra=QIDO_DOC)
async def search_series_instances(study: str, series: str, request: Request,
                                  principal: Principal = Depends(current_principal)) -> Response:
    """Instances of one series."""
    return await _search(request, principal, "instance", study, series)
