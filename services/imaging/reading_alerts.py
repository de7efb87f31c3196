"""Critical-finding alerts (影像危急值) for the requesting facility, delivered like the ECG critical values.

A reader flags a critical finding in the report (``critical`` with a note, in the draft or when signing); at
that moment, once per report, ``reading`` records the event ``imaging.critical_finding`` and this module adds
the alert row in the same transaction. After the commit the alert is published on the Redis channel of the
requesting facility (``imaging:alerts:<facility id>``, common/alert_feed.py); a WebSocket subscriber
(``/api/imaging/alerts/ws``) listens on the channel of every facility its token lets it see, so the township
that asked for the reading hears it, and the reading centre too, nobody else. A doctor of the requesting
facility acknowledges it (which is published as well); the beat task ``imaging.escalate_critical_alerts``
escalates alerts nobody acknowledged in time (published again with their level) and retries deliveries that
failed (Redis down).

The alert carries the reader's note: the doctor who must act needs to know what was found, before the
report is signed and readable by the requester.
"""

from __future__ import annotations

import logging
import uuid
from datetime import UTC, datetime
from typing import Any
from uuid import UUID

import orjson
import redis.asyncio as aioredis

from common import alert_feed
from common.audit import AuditEntry, write
from common.auth import Principal, Role
from common.db import Database
from common.errors import Conflict, Forbidden, NotFound
from common.events import record_event
from services.imaging import repository_alerts as repo
from services.imaging.reading_schemas import AcknowledgeIn, CriticalAlert
from services.imaging.settings import imaging_settings

log = logging.getLogger("telehealth.imaging.alerts")
CHANNEL_PREFIX = "imaging:alerts:"
MODALITY_ZH = {"CT": "CT", "MR": "磁共振", "DX": "X线", "CR": "X线", "DR": "X线", "US": "超声", "MG": "乳腺X线"}


def alert_values(st: Any, report: Any, reader: Principal, *, signed: bool) -> dict[str, Any]:
    modality = str(report["modality"] or "")
    note = str(report["critical_note"] or "").strip()
    return {
        "id": uuid.uuid4(), "facility_id": st["facility_id"], "study_ref": st["id"], "report_id": report["id"],
        "study_instance_uid": st["study_instance_uid"], "reading_facility_id": reader.facility_id,
        "reader_name": reader.display_name, "modality": modality, "priority": st["priority"], "note": note,
        "signed": signed,
        "message_zh": f"影像危急值({MODALITY_ZH.get(modality, modality or '影像')}):" + (note or "请立即查看报告"),
        "message_en": f"Critical imaging finding ({modality or 'imaging'}): " + (note or "see the report now"),
    }


async def raise_alert(conn: Any, reader: Principal, st: Any, report: Any, *, signed: bool) -> CriticalAlert | None:
    """The report's alert, in the caller's transaction (None if the report has one already)."""
    return await repo.insert_alert(conn, alert_values(st, report, reader, signed=signed))


def wire(alert: CriticalAlert, kind: str) -> bytes:
    """``{"type": "alert"|"escalation"|"acknowledged", "alert": {...}}`` (escalations with their ``level``)."""
    message: dict[str, Any] = {"type": kind, "alert": alert.model_dump(mode="json")}
    if kind == "escalation":
        message["level"] = alert.escalation_level
    return orjson.dumps(message)


async def publish(redis: aioredis.Redis, alert: CriticalAlert, kind: str = "alert") -> int:
    return await alert_feed.publish(redis, CHANNEL_PREFIX, alert.facility_id, wire(alert, kind))


async def deliver(db: Database, redis: Any, principal: Principal, alert: CriticalAlert | None) -> None:
    """After the commit: publish a new alert and note it (a failure is retried by the beat task)."""
    if alert is None or redis is None:
        return
    try:
        await publish(redis, alert)
        async with db.transaction(principal) as conn:
            await repo.mark_published(conn, alert.id)
    except Exception:
        log.warning("publishing a critical-finding alert failed; the beat task retries",
                    extra={"alert_id": str(alert.id)})


def personalise(message: bytes, principal: Principal) -> bytes | None:
    """The receiver's copy: clinical roles only, ``for_you`` when it is for the receiver's own facility."""
    if not principal.is_clinical:
        return None
    try:
        msg = orjson.loads(message)
    except orjson.JSONDecodeError:
        return None
    alert = msg.get("alert") if isinstance(msg, dict) else None
    if not isinstance(alert, dict):
        return None
    mine = alert.get("facility_id") == str(principal.facility_id)
    msg["alert"] = {**alert, "for_you": mine}
    msg["for_you"] = mine
    return orjson.dumps(msg)


def require_clinical(principal: Principal) -> None:
    if not principal.is_clinical:
        raise Forbidden("critical findings are open to clinical roles only")


def _for_viewer(alert: CriticalAlert, principal: Principal) -> CriticalAlert:
    return alert.model_copy(update={"for_you": alert.facility_id == principal.facility_id})


async def list_alerts(db: Database, principal: Principal, *, include_acknowledged: bool = False) -> list[CriticalAlert]:
    """Open alerts of the caller's facility and of those its reading centre serves."""
    require_clinical(principal)
    async with db.transaction(principal) as conn:
        found = await repo.open_alerts(conn, principal.visible_facility_ids,
                                       include_acknowledged=include_acknowledged)
    return [_for_viewer(a, principal) for a in found]


async def acknowledge(db: Database, redis: Any, principal: Principal, alert_id: UUID,
                      body: AcknowledgeIn) -> CriticalAlert:
    """A doctor (township doctor or specialist) of the requesting facility confirms receipt; 409 if done."""
    require_clinical(principal)
    async with db.transaction(principal) as conn:
        current = await repo.get_alert(conn, alert_id, principal.visible_facility_ids)
        if current is None:
            raise NotFound("no such alert")
        if current.facility_id != principal.facility_id or not principal.has_role(Role.TOWNSHIP_DOCTOR,
                                                                                   Role.SPECIALIST):
            raise Forbidden("a doctor of the requesting facility acknowledges a critical finding")
        if current.status != "open":
            raise Conflict(f"the alert was already acknowledged by {current.acknowledged_name}")
        alert = await repo.acknowledge(conn, alert_id, principal.user_id, principal.display_name, body.note)
        assert alert is not None  # locked above and still open
        minutes = (datetime.now(UTC) - alert.created_at).total_seconds() / 60
        await record_event(
            conn, "imaging", "imaging.critical_finding_acknowledged", facility_id=alert.facility_id,
            subject_type="imaging_report", subject_id=alert.report_id,
            payload={"alert_id": str(alert.id), "minutes": round(minutes, 2), "modality": alert.modality,
                     "escalation_level": alert.escalation_level},
        )
        await write(conn, AuditEntry.for_principal(
            principal, source="imaging", action="imaging.alert.acknowledge", outcome="success",
            object_type="imaging_alert", object_id=str(alert.id), detail={"report_id": str(alert.report_id)},
        ))
    if redis is not None:
        try:
            await publish(redis, alert, "acknowledged")
        except Exception:  # the acknowledgement stands; subscribers refresh on their next message
            log.warning("publishing an acknowledgement failed", extra={"alert_id": str(alert.id)})
    return _for_viewer(alert, principal)


async def escalate(db: Database, redis: aioredis.Redis, principal: Principal, *,
                   after_minutes: float | None = None) -> list[CriticalAlert]:
    """Beat: raise the level of alerts left unacknowledged, record the event, publish again; retry the first
    deliveries that failed."""
    s = imaging_settings()
    minutes = s.alert_escalation_minutes if after_minutes is None else after_minutes
    async with db.transaction(principal) as conn:
        due = await repo.escalate_due(conn, minutes * 60, s.alert_max_escalations)
        for alert in due:
            await record_event(
                conn, "imaging", "imaging.critical_finding_escalated", facility_id=alert.facility_id,
                subject_type="imaging_report", subject_id=alert.report_id,
                payload={"alert_id": str(alert.id), "level": alert.escalation_level, "modality": alert.modality},
            )
    for alert in due:
        try:
            await publish(redis, alert, "escalation")
        except Exception:
            log.warning("publishing an escalation failed", extra={"alert_id": str(alert.id)})
    async with db.transaction(principal) as conn:
        for alert in await repo.unpublished_open(conn):
            await publish(redis, alert)
            await repo.mark_published(conn, alert.id)
    return due
