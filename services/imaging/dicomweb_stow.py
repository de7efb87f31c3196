"""STOW-RS (PS3.18 10.5): ``POST /dicom-web/studies`` and ``/dicom-web/studies/{study}``.

The body is read a batch of parts at a time (dicomweb_stow_parts.stow_batches: parts up to MEMORY_PART bytes
in memory, larger ones spooled to a temporary file as they arrive) and each batch is stored by
``store_batch.store_instances`` (one index transaction per batch, the objects written concurrently) before the
next one is read, so the request's size never meets memory. The answer is the Store Instances Response
Module as DICOM JSON: 200 when every instance was stored, 202 when some failed or carry a warning, 409 when
none was stored.
"""

from __future__ import annotations

import asyncio
import shutil
import tempfile
from collections.abc import AsyncIterator, Sequence
from pathlib import Path
from typing import Any

import orjson
from fastapi import APIRouter, Depends, Request
from fastapi.responses import Response

from common.auth import Principal, current_principal
from common.errors import BadRequest
from services.imaging import reading, service, service_render, store_batch
from services.imaging.dicomweb import PREFIX, archive_of, dicom_json, dicomweb_base
from services.imaging.dicomweb_multipart import stow_boundary
from services.imaging.dicomweb_stow_parts import StowPart, stow_batches
from services.imaging.schemas import FAILURE_CANNOT_UNDERSTAND, Origin, StoreOutcome, StoreStatus, failed
from services.imaging.store_batch import Item

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
MEMORY_PART = 32 * 1024 * 1024    # parts up to this size are held in memory, larger ones spooled to a file
BATCH_PARTS = 16                  # instances stored together (one index transaction)
BATCH_BYTES = 64 * 1024 * 1024    # ...or fewer, when their bytes in memory reach this
PIXEL_DATA = b"\xe0\x7f\x10\x00"   # (7FE0,0010) little endian: an image worth prerendering (service_render)


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


def _refusal(part: StowPart) -> StoreOutcome | None:
    if not part.complete:
        return failed(FAILURE_CANNOT_UNDERSTAND, "the request body ended inside this part")
    if part.content_type.type not in ("application/dicom", "application/octet-stream"):
        return failed(FAILURE_CANNOT_UNDERSTAND, f"a {part.content_type.type} part; only application/dicom is stored")
    if part.size == 0:
        return failed(FAILURE_CANNOT_UNDERSTAND, "an empty part")
    return None


async def stow_body(archive: service.Archive, principal: Principal, chunks: AsyncIterator[bytes],
                    content_type: str | None, study_uid: str | None, base: str) -> tuple[int, bytes]:
    """Read the multipart body and store its instances, a batch of parts at a time (store_batch.py): the
    answer's status and body. Parts up to MEMORY_PART bytes stay in memory, larger ones go to a temporary
    file as they arrive; a batch is stored before the next one is read."""
    boundary = stow_boundary(content_type)
    work = Path(await asyncio.to_thread(tempfile.mkdtemp, prefix="imaging-stow-"))
    outcomes: list[tuple[int, StoreOutcome]] = []
    try:
        async for parts in stow_batches(chunks, boundary, work, max_body=archive.settings.max_stow_bytes,
                                        max_part=archive.settings.max_instance_bytes, memory_part=MEMORY_PART,
                                        batch_parts=BATCH_PARTS, batch_bytes=BATCH_BYTES):
            storable = [p for p in parts if _refusal(p) is None]
            items = [Item(p.size, p.data, p.path, p.sha256 or "") for p in storable]
            done = await store_batch.store_instances(archive, items, principal, Origin.STOW,
                                                     expected_study_uid=study_uid) if storable else []
            stored = iter(done)
            for p in parts:
                outcomes.append((p.index, _refusal(p) or next(stored)))
                p.data = None
            if archive.settings.prerender_first_frame:
                service_render.prerender(archive, [
                    (o.sop_instance_uid, it.sha256, it.data) for it, o in zip(items, done, strict=True)
                    if o.status in (StoreStatus.STORED, StoreStatus.REPLACED) and it.data is not None
                    and PIXEL_DATA in it.data])
            for path in [p.path for p in parts if p.path is not None]:
                await asyncio.to_thread(path.unlink, True)
    finally:
        await asyncio.to_thread(shutil.rmtree, work, True)
    if not outcomes:
        raise BadRequest("the request holds no instances")
    return store_response(outcomes, base, study_uid)


async def _stow(request: Request, principal: Principal, study_uid: str | None) -> Response:
    service.require_store_role(principal)  # before reading a possibly large body
    priority = reading.upload_priority(request.query_params.get("priority"))  # ?priority=stat|urgent|routine
    archive = archive_of(request)
    if study_uid is not None:
        await service.require_stow_study(archive, principal, study_uid)
    status, body = await stow_body(archive, principal, request.stream(), request.headers.get("content-type"),
                                   study_uid, dicomweb_base(request))
    if priority is not None:
        await reading.set_upload_priority(archive.db, principal, priority, body)
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
