"""Domain events: the transactional outbox of each service, and the relay to the gateway's analytics.

A service records an event in its own ``<schema>.outbox`` inside the transaction that makes the change
(``record_event``), so the event exists exactly when the change does. The ``<service>.relay_events`` Celery
task (common/tasks.py) calls ``relay_pending``: it claims pending rows with ``FOR UPDATE SKIP LOCKED`` (two
relays never send the same row at once), posts them to the gateway's ``/internal/events`` and marks them
relayed; on failure it counts an attempt and leaves them pending. Delivery is at least once: the gateway
ignores a (source, event id) it has seen, so a redelivery changes nothing.

Events feed the bureau's aggregates: payloads carry ids, codes, flags and durations, never a patient's
name, ID number, phone or address (``record_event`` refuses such keys).
"""

from __future__ import annotations

import logging
import re
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol
from uuid import UUID

import asyncpg
import httpx
import orjson

from common.auth import system_principal
from common.config import PlatformSettings
from common.db import Database
from common.services import SERVICES

log = logging.getLogger("telehealth.events")

OUTBOX_SCHEMAS = frozenset(spec.name for spec in SERVICES)
EVENT_TYPE = re.compile(r"^[a-z][a-z0-9_]*(\.[a-z][a-z0-9_]*)+$")
MAX_PAYLOAD_BYTES = 8 * 1024
# Keys that name personal data: events go to aggregate analytics and must never carry them.
PATIENT_IDENTIFIER_KEYS = frozenset(
    {
        "name",
        "patient_name",
        "id_number",
        "national_id",
        "id_card",
        "phone",
        "mobile",
        "address",
        "birth_date",
        "date_of_birth",
        "email",
        "insurance_number",
        "medical_record_number",
        "mrn",
    }
)

# The event types the analytics indicators count (gateway/analytics/indicators.py). Services may record
# others; these are the names everyone shares. Payload keys in brackets are optional and used by filters.
EVENT_CATALOGUE: dict[str, str] = {
    "imaging.study_received": "a study arrived (STOW-RS, C-STORE or upload) [modality]",
    "imaging.report_signed": "a radiologist signed the report [on_time: bool, turnaround_minutes]",
    "imaging.critical_finding": "a radiologist flagged a critical finding, for the requesting facility [modality]",
    "imaging.critical_finding_acknowledged": "the requesting facility acknowledged a critical finding [minutes]",
    "imaging.critical_finding_escalated": "a critical-finding alert went unacknowledged and was escalated [level]",
    "ecg.recording_received": "an ECG recording arrived [format]",
    "ecg.report_signed": "a cardiologist signed the ECG report [on_time: bool, turnaround_minutes]",
    "ecg.critical_value": "automatic analysis or a reader flagged a critical value [finding]",
    "ecg.analysis_completed": "the automatic analysis of a recording finished [critical: bool, elapsed_ms]",
    "ecg.critical_value_acknowledged": "a doctor acknowledged a critical-value alert [finding, minutes]",
    "ecg.critical_value_escalated": "a critical-value alert went unacknowledged and was escalated [finding, level]",
    "pathology.case_received": "a pathology case (slides) arrived",
    "pathology.report_signed": "a pathologist signed the report [on_time: bool, turnaround_minutes]",
    "consult.requested": "a remote consultation was requested [specialty]",
    "consult.accepted": "the consulted side accepted",
    "consult.declined": "the consulted side declined (with a reason)",
    "consult.closed": "the consultation ended with an opinion",
    "consult.reminder": "a booked consult starts soon (24 h / 15 min before) [lead, recipients]",
    "consult.cancelled": "the requesting side cancelled the consultation",
    "consult.reassigned": "the consulted side gave the consultation to another specialist",
    "consult.scheduled": "a time was booked for the consultation",
    "consult.rescheduled": "the booked time of the consultation changed",
    "consult.session_started": "a video session of the consultation started",
    "consult.session_ended": "a video session of the consultation ended [minutes]",
    "consult.opinion_written": "the consultant wrote (or edited) the opinion",
    "consult.opinion_signed": "the consultant signed the opinion [on_time: bool, turnaround_minutes]",
    "consult.opinion_acknowledged": "the requesting doctor acknowledged the signed opinion",
    "consult.overdue": "a consultation missed its respond or opinion deadline; escalated [deadline, level]",
    "consult.recording_started": "the host started recording a consult's video session [by_user_id]",
    "consult.recording_stopped": "a consult's video recording stopped [by_user_id, reason]",
    "health_mgmt.followup_due": "a chronic-disease follow-up fell due [condition]",
    "health_mgmt.followup_completed": "a follow-up was done [condition, controlled: bool]",
}


@dataclass(frozen=True)
class OutboxEvent:
    """One row of an outbox, as relayed."""

    id: UUID
    event_type: str
    facility_id: UUID | None
    subject_type: str | None
    subject_id: str | None
    payload: dict[str, Any]
    occurred_at: datetime
    attempts: int = 0

    def to_wire(self) -> dict[str, Any]:
        return {
            "id": str(self.id),
            "event_type": self.event_type,
            "facility_id": str(self.facility_id) if self.facility_id else None,
            "subject_type": self.subject_type,
            "subject_id": self.subject_id,
            "payload": self.payload,
            "occurred_at": self.occurred_at.isoformat(),
        }


@dataclass(frozen=True)
class RelayResult:
    relayed: int = 0
    failed: int = 0
    error: str | None = None


class DeliveryFailed(Exception):
    """The sink did not take the batch; the events stay pending."""


class EventSink(Protocol):
    async def deliver(self, source: str, events: Sequence[OutboxEvent]) -> None:
        """Hand ``events`` of ``source`` over, or raise (DeliveryFailed for expected failures)."""
        ...


def _schema(schema: str) -> str:
    # The schema name is interpolated into SQL: only the platform's own service schemas are accepted.
    if schema not in OUTBOX_SCHEMAS:
        raise ValueError(f"no outbox in schema {schema!r}")
    return schema


def find_identifier_keys(payload: Any, path: str = "") -> list[str]:
    """Paths of keys in ``payload`` (nested) that name personal data."""
    found: list[str] = []
    if isinstance(payload, Mapping):
        for key, value in payload.items():
            here = f"{path}.{key}" if path else str(key)
            if str(key).lower() in PATIENT_IDENTIFIER_KEYS:
                found.append(here)
            found.extend(find_identifier_keys(value, here))
    elif isinstance(payload, list):
        for i, value in enumerate(payload):
            found.extend(find_identifier_keys(value, f"{path}[{i}]"))
    return found


def scrub_payload(payload: Any) -> Any:
    """``payload`` without keys that name personal data (the gateway's second wall)."""
    if isinstance(payload, Mapping):
        return {k: scrub_payload(v) for k, v in payload.items() if str(k).lower() not in PATIENT_IDENTIFIER_KEYS}
    if isinstance(payload, list):
        return [scrub_payload(v) for v in payload]
    return payload


async def record_event(
    conn: asyncpg.Connection,
    schema: str,
    event_type: str,
    *,
    facility_id: UUID | None,
    subject_type: str | None,
    subject_id: str | UUID | None,
    payload: Mapping[str, Any] | None = None,
    event_id: UUID | None = None,
) -> UUID:
    """Add an event to ``<schema>.outbox`` in the caller's transaction; returns its id."""
    if not EVENT_TYPE.match(event_type):
        raise ValueError(f"event type {event_type!r} is not dotted lower-case (e.g. 'ecg.report_signed')")
    body = dict(payload or {})
    leaked = find_identifier_keys(body)
    if leaked:
        raise ValueError(f"event payload names personal data ({', '.join(leaked)}): record ids, not identities")
    text = orjson.dumps(body).decode()
    if len(text) > MAX_PAYLOAD_BYTES:
        raise ValueError(f"event payload over {MAX_PAYLOAD_BYTES} bytes: keep events small, store ids")
    eid = event_id or uuid.uuid4()
    # clock_timestamp(), not now(): events of one transaction keep the order they were recorded in.
    # payload goes in as text and is cast in SQL, so this works with or without a jsonb codec on conn.
    await conn.execute(
        f"INSERT INTO {_schema(schema)}.outbox (id, event_type, facility_id, subject_type, subject_id, payload,"  # noqa: S608
        " occurred_at) VALUES ($1, $2, $3, $4, $5, $6::text::jsonb, clock_timestamp())",
        eid,
        event_type,
        facility_id,
        subject_type,
        None if subject_id is None else str(subject_id),
        text,
    )
    return eid


async def relay_pending(db: Database, schema: str, sink: EventSink, batch: int = 100) -> RelayResult:
    """Deliver up to ``batch`` pending events of ``schema`` to ``sink``; never loses one.

    Rows are claimed with SKIP LOCKED and held for the delivery, so concurrent relays share the work.
    Least-tried first: an event the gateway keeps refusing cannot starve the ones behind it.
    """
    s = _schema(schema)
    async with db.transaction(system_principal()) as conn:
        rows = await conn.fetch(
            "SELECT id, event_type, facility_id, subject_type, subject_id, payload::text AS payload,"  # noqa: S608
            f" occurred_at, attempts FROM {s}.outbox WHERE relayed_at IS NULL"
            " ORDER BY attempts, occurred_at, id LIMIT $1 FOR UPDATE SKIP LOCKED",
            batch,
        )
        if not rows:
            return RelayResult()
        events = [
            OutboxEvent(
                r["id"],
                r["event_type"],
                r["facility_id"],
                r["subject_type"],
                r["subject_id"],
                orjson.loads(r["payload"]),
                r["occurred_at"],
                r["attempts"],
            )
            for r in rows
        ]
        ids = [e.id for e in events]
        try:
            await sink.deliver(schema, events)
        except Exception as exc:  # nothing is lost: count the attempt, keep the rows pending
            if isinstance(exc, DeliveryFailed | httpx.HTTPError):
                log.warning("event relay failed", extra={"source": schema, "events": len(ids), "error": str(exc)})
            else:
                log.exception("event relay failed unexpectedly", extra={"source": schema, "events": len(ids)})
            await conn.execute(f"UPDATE {s}.outbox SET attempts = attempts + 1 WHERE id = ANY($1::uuid[])", ids)  # noqa: S608
            return RelayResult(failed=len(ids), error=f"{type(exc).__name__}: {exc}")
        await conn.execute(
            f"UPDATE {s}.outbox SET relayed_at = now(), attempts = attempts + 1 WHERE id = ANY($1::uuid[])",  # noqa: S608
            ids,
        )
    return RelayResult(relayed=len(ids))


async def drain_outbox(
    db: Database, schema: str, sink: EventSink, *, batch: int = 100, max_batches: int = 50
) -> RelayResult:
    """Relay batches until the outbox is empty, a delivery fails, or ``max_batches`` were sent."""
    relayed = 0
    for _ in range(max_batches):
        result = await relay_pending(db, schema, sink, batch)
        relayed += result.relayed
        if result.failed:
            return RelayResult(relayed=relayed, failed=result.failed, error=result.error)
        if result.relayed < batch:
            break
    return RelayResult(relayed=relayed)


class GatewaySink:
    """Posts batches to ``{GATEWAY_URL}/internal/events`` with the internal API key."""

    def __init__(
        self, gateway_url: str, internal_key: str, *, client: httpx.AsyncClient | None = None, timeout: float = 10.0
    ):
        self.url = gateway_url.rstrip("/") + "/internal/events"
        self._key = internal_key
        self._own_client = client is None
        self._client = client or httpx.AsyncClient(timeout=timeout)

    @classmethod
    def from_settings(cls, settings: PlatformSettings, **kw: Any) -> GatewaySink:
        return cls(settings.gateway_url, settings.internal_api_key, **kw)

    async def deliver(self, source: str, events: Sequence[OutboxEvent]) -> None:
        try:
            response = await self._client.post(
                self.url,
                content=orjson.dumps({"source": source, "events": [e.to_wire() for e in events]}),
                headers={"X-Internal-Key": self._key, "Content-Type": "application/json"},
            )
        except httpx.HTTPError as exc:
            raise DeliveryFailed(f"gateway unreachable: {type(exc).__name__}") from exc
        if response.status_code >= 300:
            raise DeliveryFailed(f"gateway answered {response.status_code}: {response.text[:200]}")

    async def aclose(self) -> None:
        if self._own_client:
            await self._client.aclose()
