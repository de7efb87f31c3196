"""STOW-RS (PS3.18 10.5): ``POST /dicom-web/studies`` and ``/dicom-web/studies/{study}``.

The body is read part by part (dicomweb_multipart.spool_parts): each application/dicom part goes to a
temporary file and into ``service.store_instance`` before the next part is read, so the request's size
never meets memory. The answer is the Store Instances Response Module as DICOM JSON: 200 when every
instance was stored, 202 when some failed or carry a warning, 409 when none was stored.
"""

from __future__ import annotations

import asyncio
import shutil
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import orjson
from fastapi import APIRouter, Depends, Request
from fastapi.responses import Response

from common.auth import Principal, current_principal
from common.errors import BadRequest
from services.imaging import service
from services.imaging.dicomweb import PREFIX, archive_of, dicom_json, dicomweb_base
from services.imaging.dicomweb_multipart import spool_parts, stow_boundary
from services.imaging.schemas import FAILURE_CANNOT_UNDERSTAND, Origin, StoreOutcome, failed

router = APIRouter(prefix=PREFIX, tags=["dicomweb"])

STOW_BODY: dict[str, Any] = {
    "requestBody": {
        "required": True,
        "content": {"multipart/related; type=\"application/dicom\"": {
            "schema": {"type": "string", "format": "binary"},
            "example": "one application/dicom part per instance (DICOM Part-10 files)"}},
    },
    "responses": {"200": {"content": {"application/dicom+json": {}}, "description": "all stored"},
                  "202": {"description": "some stored; FailedSOPSequence or Warning Reason for the others"},
                  "409": {"description": "none stored; each FailedSOPSequence item has a Failure Reason"}},
}
ERROR_COMMENT = "00000902"  # LO: the failure in words (at most 64 characters)


def _uid(value: str) -> dict[str, Any]:
    return {"vr": "UI", "Value": [value]} if value else {"vr": "UI"}


def _comment(index: int, detail: str) -> dict[str, Any]:
    text = f"part {index}: {detail}"
    return {"vr": "LO", "Value": [text if len(text) <= 64 else text[:61] + "..."]}


def store_response(outcomes: Sequence[tuple[int, StoreOutcome]], base: str,
                   study_uid: str | None) -> tuple[int, bytes]:
    """The Store Instances Response Module (PS3.18 Annex I) and its HTTP status."""
    referenced, failures, warned = [], [], False
    for index, o in outcomes:
        if o.ok:
            item = {"00081150": _uid(o.sop_class_uid), "00081155": _uid(o.sop_instance_uid),
                    "00081190": {"vr": "UR", "Value": [f"{base}/studies/{o.study_uid}/series/{o.series_uid}"
                                                       f"/instances/{o.sop_instance_uid}"]}}
            if o.warning_reason is not None:
                warned = True
                item["00081196"] = {"vr": "US", "Value": [o.warning_reason]}
                item[ERROR_COMMENT] = _comment(index, o.detail)
            referenced.append(item)
        else:
            failures.append({"00081150": _uid(o.sop_class_uid), "00081155": _uid(o.sop_instance_uid),
                             "00081197": {"vr": "US", "Value": [o.failure_reason or FAILURE_CANNOT_UNDERSTAND]},
                             ERROR_COMMENT: _comment(index, o.detail)})
    body: dict[str, Any] = {}
    studies = {o.study_uid for _, o in outcomes if o.ok}
    target = study_uid or (next(iter(studies)) if len(studies) == 1 else None)
    body["00081190"] = {"vr": "UR", "Value": [f"{base}/studies/{target}"]} if target else {"vr": "UR"}
    if referenced:
        body["00081199"] = {"vr": "SQ", "Value": referenced}
    if failures:
        body["00081198"] = {"vr": "SQ", "Value": failures}
    status = 409 if not referenced else 202 if failures or warned else 200
    return status, orjson.dumps(body, option=orjson.OPT_SORT_KEYS)


async def _stow(request: Request, principal: Principal, study_uid: str | None) -> Response:
    service.require_store_role(principal)  # before reading a possibly large body
    archive = archive_of(request)
    if study_uid is not None:
        await service.require_stow_study(archive, principal, study_uid)
    boundary = stow_boundary(request.headers.get("content-type"))
    work = Path(await asyncio.to_thread(tempfile.mkdtemp, prefix="imaging-stow-"))
    outcomes: list[tuple[int, StoreOutcome]] = []
    try:
        async for part in spool_parts(request.stream(), boundary, work, max_body=archive.settings.max_stow_bytes,
                                      max_part=archive.settings.max_instance_bytes):
            if not part.complete:
                outcome = failed(FAILURE_CANNOT_UNDERSTAND, "the request body ended inside this part")
            elif part.content_type.type not in ("application/dicom", "application/octet-stream"):
                outcome = failed(FAILURE_CANNOT_UNDERSTAND,
                                 f"a {part.content_type.type} part; only application/dicom is stored")
            elif part.size == 0:
                outcome = failed(FAILURE_CANNOT_UNDERSTAND, "an empty part")
            else:
                outcome = await service.store_instance(archive, part.path, principal, Origin.STOW,
                                                       expected_study_uid=study_uid, sha256=part.sha256,
                                                       size=part.size)
            outcomes.append((part.index, outcome))
    finally:
        await asyncio.to_thread(shutil.rmtree, work, True)
    if not outcomes:
        raise BadRequest("the request holds no instances")
    status, body = store_response(outcomes, dicomweb_base(request), study_uid)
    return dicom_json(body, status=status)


@router.post("/studies", openapi_extra=STOW_BODY, response_class=Response)
async def store_instances(request: Request, principal: Principal = Depends(current_principal)) -> Response:
    """STOW-RS: store the instances of the multipart/related body (any studies) at the caller's facility."""
    return await _stow(request, principal, None)


@router.post("/studies/{study}", openapi_extra=STOW_BODY, response_class=Response)
async def store_study_instances(study: str, request: Request,
                                principal: Principal = Depends(current_principal)) -> Response:
    """STOW-RS into one study: instances of another study fail with Failure Reason 0xA900."""
    return await _stow(request, principal, study)
