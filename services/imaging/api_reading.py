"""HTTP layer of imaging reading: worklist, priority, claim/assign, report draft, sign, addenda, PDF. Thin."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import date
from uuid import UUID

import orjson
from fastapi import APIRouter, Depends, Query, Request, WebSocket
from fastapi.responses import Response, StreamingResponse

from common import alert_feed
from common.auth import Principal, current_principal
from common.db import Database
from common.errors import AppError
from common.signing import Addendum, SignIn
from common.storage import ObjectStore
from common.ws_auth import authenticate_websocket, deny_websocket
from services.imaging import reading, reading_alerts
from services.imaging.reading_schemas import (
    AcknowledgeIn,
    AddendumIn,
    AssignIn,
    CriticalAlert,
    CriticalAlertList,
    PriorityIn,
    Reader,
    Report,
    ReportDraftIn,
    Template,
    Worklist,
    WorklistItem,
)
from services.imaging.reading_templates import TEMPLATES

router = APIRouter(prefix="/api/imaging", tags=["imaging reading"])


def _db(request: Request) -> Database:
    db: Database = request.app.state.db
    return db


@router.get("/worklist", response_model=Worklist)
async def worklist(
    request: Request,
    status: list[str] | None = Query(default=None, description="default: new, assigned, in_progress, reported"),
    priority: str | None = Query(default=None, description="stat, urgent or routine"),
    modality: str | None = Query(default=None, description="a modality in the study (CT, MR, DX, ...)"),
    facility_id: UUID | None = Query(default=None, description="the requesting facility"),
    date_from: date | None = Query(default=None, description="received on or after (Asia/Shanghai day)"),
    date_to: date | None = Query(default=None, description="received on or before (Asia/Shanghai day)"),
    mine: bool = Query(default=False, description="only studies assigned to me"),
    limit: int = Query(default=50, ge=1, le=200),
    offset: int = Query(default=0, ge=0),
    principal: Principal = Depends(current_principal),
) -> Worklist:
    """The reading facility's worklist (specialists): STAT, urgent, routine, then the oldest first."""
    return await reading.worklist(_db(request), principal, statuses=status, priority=priority, modality=modality,
                                  facility_id=facility_id, date_from=date_from, date_to=date_to, mine=mine,
                                  limit=limit, offset=offset)


@router.get("/readers", response_model=list[Reader])
async def readers(request: Request, principal: Principal = Depends(current_principal)) -> list[Reader]:
    """Specialists of my facility that work may be assigned to."""
    return await reading.readers(_db(request), principal)


@router.get("/report-templates", response_model=list[Template])
async def templates(principal: Principal = Depends(current_principal)) -> list[Template]:
    """The report templates per modality (CT, MR, DX/CR, US, default)."""
    reading.require_clinical(principal)
    return list(TEMPLATES)


@router.put("/studies/{study}/priority", response_model=WorklistItem)
async def set_priority(study: str, body: PriorityIn, request: Request,
                       principal: Principal = Depends(current_principal)) -> WorklistItem:
    """The requester sets STAT / urgent / routine (and the clinical question), at upload or later."""
    return await reading.set_priority(_db(request), principal, study, body)


@router.post("/studies/{study}/claim", response_model=Report)
async def claim(study: str, request: Request, principal: Principal = Depends(current_principal)) -> Report:
    """Take the study to read: opens a draft from the modality's template."""
    return await reading.claim(_db(request), principal, study)


@router.post("/studies/{study}/assign", response_model=WorklistItem)
async def assign(study: str, body: AssignIn, request: Request,
                 principal: Principal = Depends(current_principal)) -> WorklistItem:
    """Give the study to a named specialist of my facility."""
    return await reading.assign(_db(request), principal, study, body)


@router.get("/studies/{study}/report", response_model=Report)
async def get_report(study: str, request: Request, principal: Principal = Depends(current_principal)) -> Report:
    """The report with addenda (the requester: once signed)."""
    return await reading.get_report(_db(request), principal, study)


@router.put("/studies/{study}/report", response_model=Report)
async def save_draft(study: str, body: ReportDraftIn, request: Request,
                     principal: Principal = Depends(current_principal)) -> Report:
    """Edit findings, impression and the critical flag at ``version`` (409 when stale or signed)."""
    return await reading.save_draft(_db(request), principal, study, body, getattr(request.app.state, "redis", None))


@router.post("/studies/{study}/report/sign", response_model=Report)
async def sign(study: str, body: SignIn, request: Request, principal: Principal = Depends(current_principal)) -> Report:
    """Sign the draft at ``version``: immutable afterwards (content hash, signer and time stored)."""
    return await reading.sign(_db(request), principal, study, body, getattr(request.app.state, "redis", None))


@router.post("/studies/{study}/report/addenda", status_code=201, response_model=Addendum)
async def add_addendum(study: str, body: AddendumIn, request: Request,
                       principal: Principal = Depends(current_principal)) -> Addendum:
    """Add to a signed report without changing it."""
    return await reading.add_addendum(_db(request), principal, study, body)


async def _chunks(store: ObjectStore, key: str) -> AsyncIterator[bytes]:
    async for chunk in store.get(key):
        yield chunk


@router.get("/studies/{study}/report/pdf", response_class=Response,
            responses={200: {"content": {"application/pdf": {}}}})
async def report_pdf(study: str, request: Request, principal: Principal = Depends(current_principal)) -> Response:
    """The signed report as PDF (409 ``not_ready`` for a few seconds after signing or an addendum)."""
    store: ObjectStore = request.app.state.store
    key = await reading.pdf_key(_db(request), principal, study)
    info = await store.stat(key)
    return StreamingResponse(_chunks(store, key), media_type="application/pdf",
                             headers={"Content-Length": str(info.size),
                                      "Content-Disposition": 'attachment; filename="imaging-report.pdf"'})


# -- critical-finding alerts (reading_alerts.py) -------------------------------------------------------


@router.get("/alerts", response_model=CriticalAlertList)
async def list_alerts(
    request: Request,
    include_acknowledged: bool = Query(default=False, description="also those acknowledged in the last 24 h"),
    principal: Principal = Depends(current_principal),
) -> CriticalAlertList:
    """Open critical-finding alerts of my facility and of those my reading centre serves (``for_you``: for
    my own facility, which must acknowledge it)."""
    items = await reading_alerts.list_alerts(_db(request), principal, include_acknowledged=include_acknowledged)
    return CriticalAlertList(items=items)


@router.post("/alerts/{alert_id}/acknowledge", response_model=CriticalAlert)
async def acknowledge_alert(alert_id: UUID, request: Request, body: AcknowledgeIn | None = None,
                            principal: Principal = Depends(current_principal)) -> CriticalAlert:
    """A doctor of the requesting facility acknowledges the finding (409 once done)."""
    return await reading_alerts.acknowledge(_db(request), getattr(request.app.state, "redis", None), principal,
                                            alert_id, body or AcknowledgeIn())


@router.websocket("/alerts/ws")
async def alerts_ws(ws: WebSocket) -> None:
    """Real-time critical findings: a ``snapshot`` of open alerts, then ``alert``, ``escalation`` and
    ``acknowledged`` messages, a ``heartbeat`` when quiet. Token as for the ECG alerts (common/ws_auth.py)."""
    try:
        principal, subprotocol = authenticate_websocket(ws)
        reading_alerts.require_clinical(principal)
    except AppError as exc:
        await deny_websocket(ws, exc)
        return
    ws.state.principal = principal  # the platform middleware audits the connection with it
    db: Database = ws.app.state.db

    async def snapshot() -> str:
        items = await reading_alerts.list_alerts(db, principal)
        return orjson.dumps({"type": "snapshot", "alerts": [a.model_dump(mode="json") for a in items]}).decode()

    async with alert_feed.subscription(ws.app.state.redis, reading_alerts.CHANNEL_PREFIX,
                                       principal.visible_facility_ids) as pubsub:  # before the snapshot
        await ws.accept(subprotocol=subprotocol)
        await alert_feed.serve(ws, pubsub, snapshot, lambda m: reading_alerts.personalise(m, principal))
