"""HTTP and WebSocket layer of critical-value alerts (危急值)."""

from __future__ import annotations

import logging
from uuid import UUID

import orjson
from fastapi import APIRouter, Depends, Query, Request, WebSocket

from common import alert_feed
from common.auth import Principal, current_principal
from common.db import Database
from common.errors import AppError
from common.ws_auth import authenticate_websocket, deny_websocket
from services.ecg import alerts, duty
from services.ecg.schemas import AcknowledgeIn, Alert, AlertList

log = logging.getLogger("telehealth.ecg.alerts")
router = APIRouter(prefix="/api/ecg", tags=["ecg alerts"])
HEARTBEAT_SECONDS = 25.0


def _db(request: Request) -> Database:
    db: Database = request.app.state.db
    return db


@router.get("/alerts", response_model=AlertList)
async def list_alerts(
    request: Request,
    include_acknowledged: bool = Query(default=False, description="also those acknowledged in the last 24 h"),
    principal: Principal = Depends(current_principal),
) -> AlertList:
    """Open critical-value alerts of the caller's facility and of the facilities it reads for, each marked
    ``for_you`` when assigned to the caller (a reading centre's facility_admin: those escalated to them)."""
    items = await alerts.list_alerts(_db(request), principal, include_acknowledged=include_acknowledged)
    return AlertList(items=items)


@router.post("/alerts/{alert_id}/acknowledge", response_model=Alert)
async def acknowledge(
    alert_id: UUID, request: Request, body: AcknowledgeIn | None = None,
    principal: Principal = Depends(current_principal),
) -> Alert:
    """Acknowledge an alert (a doctor of the facility, or a specialist of its reading centre); 409 if done."""
    return await alerts.acknowledge(_db(request), request.app.state.redis, principal, alert_id,
                                    body or AcknowledgeIn())


def _authenticate(ws: WebSocket) -> tuple[Principal, str | None]:
    principal, subprotocol = authenticate_websocket(ws)
    alerts.require_viewer(principal)
    return principal, subprotocol


@router.websocket("/alerts/ws")
async def alerts_ws(ws: WebSocket) -> None:
    """Real-time alerts: a ``snapshot`` of open alerts on connect, then ``alert``, ``escalation`` and
    ``acknowledged`` messages as they happen, and a ``heartbeat`` when quiet. Each alert says whether it is
    assigned to you (``for_you``) or to nobody (``unassigned``); escalations carry ``level`` and ``to_admin``.
    A reading centre's facility_admin receives only the alerts escalated to them, without the patient."""
    try:
        principal, subprotocol = _authenticate(ws)
    except AppError as exc:
        await deny_websocket(ws, exc)
        return
    ws.state.principal = principal  # the platform middleware audits the connection with it
    redis = ws.app.state.redis
    await duty.remember_reading_centre(ws.app.state.db, principal)  # keep the reading-centre mapping fresh
    async with alerts.feed(redis, principal) as pubsub:  # subscribed before the snapshot: no gap
        await ws.accept(subprotocol=subprotocol)

        async def snapshot() -> str:
            items = await alerts.list_alerts(ws.app.state.db, principal)
            return orjson.dumps({"type": "snapshot", "alerts": [a.model_dump(mode="json") for a in items]}).decode()

        await alert_feed.serve(ws, pubsub, snapshot, lambda message: alerts.personalise(message, principal),
                               HEARTBEAT_SECONDS)
