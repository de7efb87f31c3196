"""HTTP layer of the ecg service, reading: worklist, claim, draft report, sign, addenda, PDF and DICOM out."""

from __future__ import annotations

from uuid import UUID

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import Response, StreamingResponse

from common.auth import Principal, current_principal
from common.db import Database
from common.signing import Addendum, SignIn
from common.storage import ObjectStore
from services.ecg import reading
from services.ecg.api import stream_object
from services.ecg.schemas import AddendumIn, Report, ReportDraftIn, Worklist

router = APIRouter(prefix="/api/ecg", tags=["ecg reading"])


def _db(request: Request) -> Database:
    db: Database = request.app.state.db
    return db


@router.get("/worklist", response_model=Worklist)
async def worklist(
    request: Request,
    status: list[str] | None = Query(default=None, description="default: everything not yet signed"),
    priority: str | None = Query(default=None),
    limit: int = Query(default=50, ge=1, le=200),
    offset: int = Query(default=0, ge=0),
    principal: Principal = Depends(current_principal),
) -> Worklist:
    """The reading centre's worklist (specialists): critical first, then priority, then the oldest."""
    return await reading.worklist(_db(request), principal, statuses=status, priority=priority, limit=limit,
                                  offset=offset)


@router.post("/recordings/{recording_id}/claim", response_model=Report)
async def claim(recording_id: UUID, request: Request, principal: Principal = Depends(current_principal)) -> Report:
    """Take the recording to read: opens a draft prefilled with the machine's measurements and statements."""
    return await reading.claim(_db(request), principal, recording_id)


@router.get("/recordings/{recording_id}/report", response_model=Report)
async def get_report(
    recording_id: UUID, request: Request, principal: Principal = Depends(current_principal)
) -> Report:
    """The report (draft or signed, with addenda)."""
    return await reading.get_report(_db(request), principal, recording_id)


@router.put("/recordings/{recording_id}/report", response_model=Report)
async def save_draft(
    recording_id: UUID, body: ReportDraftIn, request: Request, principal: Principal = Depends(current_principal)
) -> Report:
    """Confirm or edit measurements, statements and conclusion (the claiming reader; 409 once signed)."""
    return await reading.save_draft(_db(request), principal, recording_id, body)


@router.post("/recordings/{recording_id}/report/sign", response_model=Report)
async def sign(
    recording_id: UUID, body: SignIn, request: Request, principal: Principal = Depends(current_principal)
) -> Report:
    """Sign the draft at ``version``: immutable afterwards (content hash, signer and time stored)."""
    return await reading.sign(_db(request), principal, recording_id, body)


@router.post("/recordings/{recording_id}/report/addenda", status_code=201, response_model=Addendum)
async def add_addendum(
    recording_id: UUID, body: AddendumIn, request: Request, principal: Principal = Depends(current_principal)
) -> Addendum:
    """Add to a signed report without changing it."""
    return await reading.add_addendum(_db(request), principal, recording_id, body)


async def _download(request: Request, principal: Principal, recording_id: UUID, kind: str, media: str) -> Response:
    store: ObjectStore = request.app.state.store
    key = await reading.rendered_key(_db(request), principal, recording_id, kind)
    info = await store.stat(key)
    return StreamingResponse(
        stream_object(store, key), media_type=media,
        headers={"Content-Length": str(info.size),
                 "Content-Disposition": f'attachment; filename="ecg-report-{recording_id}.{kind}"'},
    )


@router.get("/recordings/{recording_id}/report/pdf", responses={200: {"content": {"application/pdf": {}}}})
async def report_pdf(
    recording_id: UUID, request: Request, principal: Principal = Depends(current_principal)
) -> Response:
    """The signed report as PDF with the 12-lead tracing (409 ``not_ready`` for a few seconds after signing)."""
    return await _download(request, principal, recording_id, "pdf", "application/pdf")


@router.get("/recordings/{recording_id}/report/dicom", responses={200: {"content": {"application/dicom": {}}}})
async def report_dicom(
    recording_id: UUID, request: Request, principal: Principal = Depends(current_principal)
) -> Response:
    """The signed report as a DICOM ECG waveform object with the report text."""
    return await _download(request, principal, recording_id, "dcm", "application/dicom")
