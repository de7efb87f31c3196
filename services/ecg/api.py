"""HTTP layer of the ecg service, recordings: upload, list, detail, signal for the viewer, original file."""

from __future__ import annotations

import asyncio
import shutil
import tempfile
from collections.abc import AsyncIterator
from datetime import datetime
from pathlib import Path
from typing import Any, Literal
from uuid import UUID

import orjson
from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import Response, StreamingResponse
from starlette.background import BackgroundTask
from starlette.datastructures import UploadFile

from common.auth import Principal, bearer_token, current_principal
from common.db import Database
from common.errors import Forbidden, Invalid, UnsupportedMediaType
from common.storage import ObjectStore
from services.ecg import service
from services.ecg.ingest import stage_uploads
from services.ecg.patients import require_visible_patient
from services.ecg.schemas import Recording, RecordingPage
from services.ecg.service import UPLOADER_ROLES, UploadMeta

router = APIRouter(prefix="/api/ecg", tags=["ecg"])

UPLOAD_BODY: dict[str, Any] = {
    "requestBody": {
        "required": True,
        "content": {
            "multipart/form-data": {
                "schema": {
                    "type": "object",
                    "required": ["file"],
                    "properties": {
                        "file": {"type": "array", "items": {"type": "string", "format": "binary"},
                                 "description": "one ECG file; or a WFDB .hea with its .dat/.mat; or a .zip"},
                        "patient_id": {"type": "string", "format": "uuid",
                                       "description": "the patient in the health_mgmt register"},
                        "priority": {"type": "string", "enum": ["routine", "urgent", "stat"]},
                        "clinical_note": {"type": "string", "maxLength": 2000},
                    },
                }
            }
        },
    }
}


def _db(request: Request) -> Database:
    db: Database = request.app.state.db
    return db


def _store(request: Request) -> ObjectStore:
    store: ObjectStore = request.app.state.store
    return store


def _form_text(value: Any, field: str, max_length: int) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str):
        raise Invalid(f"{field} must be a text field")
    value = value.strip()
    if len(value) > max_length:
        raise Invalid(f"{field} is longer than {max_length} characters")
    return value or None


@router.get("/capabilities")
async def capabilities(principal: Principal = Depends(current_principal)) -> dict[str, object]:
    """What this service offers."""
    from services.ecg.formats import FORMATS

    return {"service": "ecg", "status": "ready", "formats": list(FORMATS),
            "features": ["upload", "analysis", "critical_values", "worklist", "reports_pdf", "reports_dicom"]}


@router.post("/recordings", status_code=201, response_model=Recording, openapi_extra=UPLOAD_BODY)
async def upload_recording(request: Request, principal: Principal = Depends(current_principal)) -> Recording:
    """Upload an ECG (multipart ``file``: one file, a WFDB .hea with its signal files, or a .zip) at the
    caller's facility. Unreadable files answer 422 with the reason and leave nothing stored; the analysis
    starts in the background (status ``new`` → ``analysing`` → ``ready``)."""
    if not principal.has_role(*UPLOADER_ROLES):  # before reading a possibly large body
        raise Forbidden("uploading ECGs needs the township_doctor or technician role")
    if not request.headers.get("content-type", "").startswith("multipart/form-data"):
        raise UnsupportedMediaType("send the ECG as multipart/form-data with the file in the field 'file'")
    token = bearer_token(request) or ""
    with tempfile.TemporaryDirectory(prefix="ecg-upload-") as work:
        async with request.form(max_files=16, max_fields=16) as form:
            files = [v for k, v in form.multi_items() if k in ("file", "files") and isinstance(v, UploadFile)]
            staged = await stage_uploads(files, Path(work) / "upload")
            raw_patient = _form_text(form.get("patient_id"), "patient_id", 64)
            try:
                patient_id = UUID(raw_patient) if raw_patient else None
            except ValueError as exc:
                raise Invalid("patient_id must be a UUID from the patient register") from exc
            meta = UploadMeta(
                patient_id=patient_id,
                priority=_form_text(form.get("priority"), "priority", 16) or "routine",
                clinical_note=_form_text(form.get("clinical_note"), "clinical_note", 2000),
            )

            async def check_patient(pid: UUID) -> None:
                await require_visible_patient(token, pid)

            return await service.upload_recording(
                _db(request), _store(request), principal, staged, Path(work), meta, check_patient=check_patient
            )


@router.get("/recordings", response_model=RecordingPage)
async def list_recordings(
    request: Request,
    status: list[str] | None = Query(default=None, description="new, analysing, ready, in_review, signed, failed"),
    priority: str | None = Query(default=None, description="routine, urgent or stat"),
    facility_id: UUID | None = Query(default=None),
    patient_id: UUID | None = Query(default=None),
    received_from: datetime | None = Query(default=None, alias="from", description="received at or after"),
    received_to: datetime | None = Query(default=None, alias="to", description="received before"),
    limit: int = Query(default=50, ge=1, le=200),
    offset: int = Query(default=0, ge=0),
    principal: Principal = Depends(current_principal),
) -> RecordingPage:
    """Recordings of the caller's facility and of the facilities its reading centre serves, newest first."""
    return await service.list_recordings(
        _db(request), principal, statuses=status, priority=priority, facility_id=facility_id,
        received_from=received_from, received_to=received_to, patient_id=patient_id, limit=limit, offset=offset,
    )


@router.get("/recordings/{recording_id}", response_model=Recording)
async def get_recording(
    recording_id: UUID, request: Request, principal: Principal = Depends(current_principal)
) -> Recording:
    """Metadata, the device's own measurements and the machine reading; 404 when not the caller's to see."""
    return await service.get_recording(_db(request), principal, recording_id)


@router.get("/recordings/{recording_id}/signal", responses={200: {"content": {"application/octet-stream": {}}}})
async def get_signal(
    recording_id: UUID,
    request: Request,
    start: float = Query(default=0.0, ge=0, description="window start, seconds from the beginning"),
    duration: float | None = Query(default=None, gt=0, le=86400, description="seconds (default: to the end)"),
    fs: float | None = Query(default=None, gt=0, le=10000, description="resample down to this rate (Hz)"),
    leads: str | None = Query(default=None, max_length=300, description="comma-separated lead names"),
    format: Literal["json", "binary"] = Query(default="json"),
    principal: Principal = Depends(current_principal),
) -> Response:
    """The signal for the viewer: leads x samples in mV over a window, optionally at a lower rate. ``binary``
    is little-endian float32, leads x samples (NaN: no data), described by the X-ECG-* headers."""
    names = [n.strip() for n in leads.split(",") if n.strip()] if leads else None
    win = await service.signal_window(_db(request), _store(request), principal, recording_id, start_s=start,
                                      duration_s=duration, fs=fs, leads=names)
    headers = {"X-ECG-Fs": f"{win.fs:g}", "X-ECG-Start": f"{win.start_s:g}", "X-ECG-Leads": ",".join(win.lead_names),
               "X-ECG-Samples": str(win.data.shape[1]), "X-ECG-Units": "mV", "Cache-Control": "private, max-age=300"}
    if format == "binary":
        return Response(win.data.astype("<f4").tobytes(), media_type="application/octet-stream", headers=headers)
    body = {"recording_id": str(recording_id), "fs": win.fs, "start_s": win.start_s, "units": "mV",
            "leads": win.lead_names, "samples": int(win.data.shape[1]), "data": win.data.round(4)}
    return Response(orjson.dumps(body, option=orjson.OPT_SERIALIZE_NUMPY), media_type="application/json",
                    headers=headers)


async def stream_object(store: ObjectStore, key: str) -> AsyncIterator[bytes]:
    async for chunk in store.get(key):
        yield chunk


@router.get("/recordings/{recording_id}/original", responses={200: {"content": {"application/octet-stream": {}}}})
async def get_original(
    recording_id: UUID,
    request: Request,
    file: str | None = Query(default=None, max_length=200, description="one file of a multi-file upload"),
    principal: Principal = Depends(current_principal),
) -> Response:
    """The uploaded file byte-for-byte (a WFDB pair comes as a zip unless ``file`` picks one)."""
    store = _store(request)
    files = await service.original_files(_db(request), principal, recording_id, file)
    if len(files) == 1:
        f = files[0]
        info = await store.stat(f.key)  # 404/503 before the response starts
        return StreamingResponse(
            stream_object(store, f.key), media_type=f.content_type,
            headers={"Content-Length": str(info.size), "X-Content-SHA256": f.sha256,
                     "Content-Disposition": f'attachment; filename="{f.name}"'},
        )
    spool = Path(await asyncio.to_thread(tempfile.mkdtemp, prefix="ecg-original-")) / f"{recording_id}.zip"
    await service.zip_originals(store, files, spool)

    def cleanup() -> None:
        shutil.rmtree(spool.parent, ignore_errors=True)

    return StreamingResponse(
        _file_stream(spool), media_type="application/zip", background=BackgroundTask(cleanup),
        headers={"Content-Length": str(spool.stat().st_size),
                 "Content-Disposition": f'attachment; filename="{recording_id}.zip"'},
    )


async def _file_stream(path: Path) -> AsyncIterator[bytes]:
    async for chunk in service.file_chunks(path):
        yield chunk
