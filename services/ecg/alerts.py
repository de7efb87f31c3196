"""Critical values (危急值): one alert per critical recording, real-time delivery, acknowledgement, escalation.

Delivery: each alert (and each escalation) is published as JSON on the Redis channel of the recording's
facility, ``ecg:alerts:<facility id>``. A WebSocket subscriber listens on the channel of every facility its
token lets it see, so the township centre hears its own alerts and the reading centre (whose token
``serves`` the township) hears them too, without this service having to know the facility tree.

Assignment: when an alert is raised it is assigned to the reader(s) on duty for the recording's facility
(duty.py; ``assigned_to``). Each receiver's copy says whether it is theirs (``for_you``), so the UI can make
it louder; with nobody on duty the alert is ``unassigned`` and every reader of the centre is asked, as
before. Escalation (the beat task): level 1 after N minutes re-notifies the on-duty reader (those on duty
*now* are added to the assignees) and everyone at the reading centre; from level 2 (after 2N) the alert is
also flagged ``to_admin``: the reading centre's facility_admin, who has no clinical role, receives exactly
those on the feed, without the patient.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from typing import Any
from uuid import UUID

import asyncpg
import orjson
import redis.asyncio as aioredis
from redis.asyncio.client import PubSub

from common import alert_feed
from common.audit import AuditEntry, write
from common.auth import Principal, Role
from common.db import Database
from common.errors import Conflict, Forbidden, NotFound
from common.events import record_event
from services.ecg import repository_alerts as repo
from services.ecg import repository_duty as duty_repo
from services.ecg.schemas import ADMIN_ESCALATION_LEVEL, AcknowledgeIn, Alert, DutyShift
from services.ecg.settings import EcgSettings, ecg_settings

log = logging.getLogger("telehealth.ecg.alerts")

# Most severe first: the alert's headline finding is the first of these the analysis raised.
SEVERITY_ORDER: tuple[str, ...] = (
    "vf_vt",
    "asystole_pause",
    "av_block_3",
    "stemi",
    "af_rvr",
    "bradycardia",
    "tachycardia",
    "qtc_prolonged",
)


def _rank(code: str) -> int:
    return SEVERITY_ORDER.index(code) if code in SEVERITY_ORDER else len(SEVERITY_ORDER)


def channel(facility_id: UUID, settings: EcgSettings | None = None) -> str:
    return alert_feed.channel((settings or ecg_settings()).alert_channel_prefix, facility_id)


def alert_values(
    recording: Any, findings: list[dict[str, Any]], on_duty: list[DutyShift] | None = None
) -> dict[str, Any]:
    """The alert row for a recording whose analysis raised ``findings`` (at least one), assigned to the
    readers ``on_duty``."""
    ordered = sorted(findings, key=lambda f: _rank(str(f.get("code", ""))))
    head = ordered[0]
    readers = on_duty or []
    return {
        "assigned_to": [s.user_id for s in readers],
        "assigned_names": [s.display_name for s in readers],
        "id": uuid.uuid4(),
        "facility_id": recording["facility_id"],
        "recording_id": recording["id"],
        "finding": str(head.get("code", "critical")),
        "findings": ordered,
        "message_zh": "危急值:" + ";".join(str(f.get("zh") or f.get("code")) for f in ordered),
        "message_en": "Critical value: " + "; ".join(str(f.get("en") or f.get("code")) for f in ordered),
        "priority": recording["priority"],
    }


async def raise_alert(conn: asyncpg.Connection, recording: Any, findings: list[dict[str, Any]]) -> Alert | None:
    """Insert the recording's alert, assigned to the readers on duty for its facility, and its event in the
    caller's (system) transaction; None if it already exists."""
    on_duty = await duty_repo.on_duty_for(conn, recording["facility_id"])
    alert = await repo.insert_alert(conn, alert_values(recording, findings, on_duty))
    if alert is not None:
        await record_event(
            conn, "ecg", "ecg.critical_value", facility_id=alert.facility_id, subject_type="recording",
            subject_id=alert.recording_id,
            payload={"finding": alert.finding, "findings": [f.get("code") for f in alert.findings],
                     "alert_id": str(alert.id), "source": "analysis",
                     "assigned_to": [str(u) for u in alert.assigned_to], "unassigned": alert.unassigned},
        )
    return alert


def wire(alert: Alert, kind: str) -> bytes:
    """The message published: ``{"type": "alert"|"escalation"|"acknowledged", "alert": {...}}``, escalations
    with their ``level`` and ``to_admin``. Each WebSocket receiver gets it through :func:`personalise`."""
    message: dict[str, Any] = {"type": kind, "alert": alert.model_dump(mode="json")}
    if kind == "escalation":
        message |= {"level": alert.escalation_level, "to_admin": alert.to_admin}
    return orjson.dumps(message)


def _redacted(alert: dict[str, Any]) -> dict[str, Any]:
    """An alert as the facility_admin (no clinical role) sees it: no patient, no clinical note."""
    findings = [{"code": f.get("code")} for f in alert.get("findings") or [] if isinstance(f, dict)]
    return {**alert, "patient_id": None, "acknowledge_note": None, "findings": findings}


def personalise(message: bytes, principal: Principal) -> bytes | None:
    """The receiver's copy of a published message: ``for_you`` when the alert is assigned to them; for an
    alert administrator only what was flagged ``to_admin`` (redacted), None for the rest."""
    try:
        msg = orjson.loads(message)
    except orjson.JSONDecodeError:
        return None
    alert = msg.get("alert") if isinstance(msg, dict) else None
    if not isinstance(alert, dict):
        return message if principal.is_clinical else None
    mine = str(principal.user_id) in (alert.get("assigned_to") or [])
    if not principal.is_clinical:
        if not alert.get("to_admin"):
            return None
        alert, mine = _redacted(alert), False
    msg["alert"] = {**alert, "for_you": mine}
    msg["for_you"] = mine
    return orjson.dumps(msg)


def for_viewer(alert: Alert, principal: Principal) -> Alert:
    """``alert`` as ``principal`` sees it (``for_you``; redacted for an alert administrator)."""
    if not principal.is_clinical:
        return alert.model_copy(update={"patient_id": None, "acknowledge_note": None, "for_you": False,
                                        "findings": [{"code": f.get("code")} for f in alert.findings]})
    return alert.model_copy(update={"for_you": principal.user_id in alert.assigned_to})


async def publish(redis: aioredis.Redis, alert: Alert, kind: str = "alert") -> int:
    """Publish on the owner facility's channel; the number of subscribers that got it."""
    return await alert_feed.publish(redis, ecg_settings().alert_channel_prefix, alert.facility_id,
                                    wire(alert, kind))


async def deliver_pending(db: Database, redis: aioredis.Redis, principal: Principal, recording_id: UUID) -> None:
    """Publish the recording's alert if it was never published (first delivery, or a redelivered task)."""
    async with db.transaction(principal) as conn:
        alert = await repo.unpublished_alert(conn, recording_id)
        if alert is None:
            return
        await publish(redis, alert)
        await repo.mark_published(conn, alert.id)


# -- the caller's view ------------------------------------------------------------------------------


def _require_clinical(principal: Principal) -> None:
    if not principal.is_clinical:
        raise Forbidden("critical values are open to clinical roles only")


def is_alert_admin(principal: Principal) -> bool:
    """A reading centre's facility_admin without a clinical role: receives the escalations flagged to them."""
    return not principal.is_clinical and principal.has_role(Role.FACILITY_ADMIN) and bool(principal.serves)


def require_viewer(principal: Principal) -> None:
    """Clinical roles see critical values; a reading centre's facility_admin sees those flagged to_admin."""
    if not (principal.is_clinical or is_alert_admin(principal)):
        raise Forbidden("critical values are open to clinical roles (and the reading centre's administrator)")


async def list_alerts(db: Database, principal: Principal, *, include_acknowledged: bool = False) -> list[Alert]:
    """Open alerts of every facility the caller may see (its own, and those its reading centre serves), each
    marked ``for_you`` when assigned to the caller; for an alert administrator those flagged to_admin."""
    require_viewer(principal)
    min_level = 0 if principal.is_clinical else ADMIN_ESCALATION_LEVEL
    async with db.transaction(principal) as conn:
        found = await repo.open_alerts(conn, principal.visible_facility_ids,
                                       include_acknowledged=include_acknowledged, min_level=min_level)
    return [for_viewer(a, principal) for a in found]


def may_acknowledge(principal: Principal, alert: Alert) -> bool:
    """A doctor of the recording's facility, or a reader (specialist) of the centre that serves it."""
    own = alert.facility_id == principal.facility_id and principal.has_role(Role.TOWNSHIP_DOCTOR, Role.SPECIALIST)
    reader = alert.facility_id in principal.serves and principal.has_role(Role.SPECIALIST)
    return own or reader


async def acknowledge(
    db: Database, redis: aioredis.Redis, principal: Principal, alert_id: UUID, body: AcknowledgeIn
) -> Alert:
    _require_clinical(principal)
    async with db.transaction(principal) as conn:
        current = await repo.get_alert(conn, alert_id, principal.visible_facility_ids, lock=True)
        if current is None:
            raise NotFound("no such alert")
        if not may_acknowledge(principal, current):
            raise Forbidden("only a doctor of the facility or its reading centre's specialist may acknowledge")
        if current.status != "open":
            raise Conflict(f"the alert was already acknowledged by {current.acknowledged_name}")
        alert = await repo.acknowledge(conn, alert_id, principal.user_id, principal.display_name, body.note)
        assert alert is not None  # locked above and still open
        alert = for_viewer(alert, principal)
        minutes = (datetime.now(UTC) - alert.created_at).total_seconds() / 60
        await record_event(
            conn, "ecg", "ecg.critical_value_acknowledged", facility_id=alert.facility_id,
            subject_type="recording", subject_id=alert.recording_id,
            payload={"finding": alert.finding, "alert_id": str(alert.id), "minutes": round(minutes, 2),
                     "escalation_level": alert.escalation_level},
        )
        await write(conn, AuditEntry.for_principal(
            principal, source="ecg", action="ecg.alert.acknowledge", outcome="success", object_type="ecg_alert",
            object_id=str(alert.id), detail={"recording_id": str(alert.recording_id), "finding": alert.finding},
        ))
    try:
        await publish(redis, alert, "acknowledged")
    except Exception:  # the acknowledgement stands; subscribers refresh on their next message
        log.warning("publishing an acknowledgement failed", extra={"alert_id": str(alert.id)})
    return alert


async def escalate(db: Database, redis: aioredis.Redis, principal: Principal, *, after_minutes: float | None = None,
                   settings: EcgSettings | None = None) -> list[Alert]:
    """Escalate alerts left unacknowledged (beat task): raise the level, assign the readers on duty now too,
    record the event (with the level and ``to_admin``), publish again."""
    s = settings or ecg_settings()
    minutes = s.alert_escalation_minutes if after_minutes is None else after_minutes
    due: list[Alert] = []
    async with db.transaction(principal) as conn:
        for alert in await repo.escalate_due(conn, minutes * 60, s.alert_max_escalations):
            fresh = [d for d in await duty_repo.on_duty_for(conn, alert.facility_id)
                     if d.user_id not in alert.assigned_to]
            if fresh:
                alert = await repo.add_assignees(conn, alert.id, [d.user_id for d in fresh],
                                                 [d.display_name for d in fresh]) or alert
            await record_event(
                conn, "ecg", "ecg.critical_value_escalated", facility_id=alert.facility_id,
                subject_type="recording", subject_id=alert.recording_id,
                payload={"finding": alert.finding, "alert_id": str(alert.id), "level": alert.escalation_level,
                         "to_admin": alert.to_admin, "assigned_to": [str(u) for u in alert.assigned_to],
                         "unassigned": alert.unassigned},
            )
            due.append(alert)
    for alert in due:
        try:
            await publish(redis, alert, "escalation")
        except Exception:  # escalated in the database; the next escalation publishes again
            log.warning("publishing an escalation failed", extra={"alert_id": str(alert.id)})
    async with db.transaction(principal) as conn:  # first deliveries that failed: try again
        for alert in await repo.unpublished_open(conn):
            await publish(redis, alert)
            await repo.mark_published(conn, alert.id)
    return due


@asynccontextmanager
async def feed(redis: aioredis.Redis, principal: Principal) -> AsyncIterator[PubSub]:
    """A subscription to the alert channels of every facility the caller may see (subscribed on entry);
    pass each message through :func:`personalise` before sending it on."""
    require_viewer(principal)
    async with alert_feed.subscription(redis, ecg_settings().alert_channel_prefix,
                                       principal.visible_facility_ids) as pubsub:
        yield pubsub
