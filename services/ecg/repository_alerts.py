"""SQL of critical-value alerts. Reads are scoped to the caller's facilities; the beat task runs as system."""

# ruff: noqa: S608  (as for repository.py: SQL joins only column-name constants; values are bind parameters)

from __future__ import annotations

from collections.abc import Iterable
from typing import Any
from uuid import UUID

import asyncpg

from services.ecg.schemas import Alert

_ALERT_COLUMNS = (
    "id", "facility_id", "recording_id", "finding", "findings", "message_zh", "message_en", "priority", "status",
    "escalation_level", "escalated_at", "acknowledged_at", "acknowledged_by", "acknowledged_name",
    "acknowledge_note", "created_at", "assigned_to", "assigned_names",
)
# Every query names the alerts table ``a``; the patient is the recording's (read, never copied, so that it
# stays right should the recording's patient be corrected).
_COLUMNS = ", ".join(f"a.{c}" for c in _ALERT_COLUMNS) + (
    ", (SELECT r.patient_id FROM ecg.recordings r WHERE r.id = a.recording_id) AS patient_id"
)


def _alert(row: Any) -> Alert:
    return Alert(**dict(row))


async def insert_alert(conn: asyncpg.Connection, values: dict[str, Any]) -> Alert | None:
    """One alert per recording: None when the recording already has one (a redelivered task)."""
    row = await conn.fetchrow(
        "INSERT INTO ecg.alerts AS a (id, facility_id, recording_id, finding, findings, message_zh, message_en,"
        " priority, assigned_to, assigned_names) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9::uuid[], $10::text[])"
        f" ON CONFLICT (recording_id) DO NOTHING RETURNING {_COLUMNS}",
        values["id"], values["facility_id"], values["recording_id"], values["finding"], values["findings"],
        values["message_zh"], values["message_en"], values["priority"], list(values.get("assigned_to", [])),
        list(values.get("assigned_names", [])),
    )
    return _alert(row) if row else None


async def unpublished_alert(conn: asyncpg.Connection, recording_id: UUID) -> Alert | None:
    row = await conn.fetchrow(
        f"SELECT {_COLUMNS} FROM ecg.alerts a WHERE a.recording_id = $1 AND a.published_at IS NULL", recording_id
    )
    return _alert(row) if row else None


async def unpublished_open(conn: asyncpg.Connection, batch: int = 100) -> list[Alert]:
    """Open alerts whose first real-time delivery failed (Redis was down when they were raised)."""
    rows = await conn.fetch(
        f"SELECT {_COLUMNS} FROM ecg.alerts a WHERE a.status = 'open' AND a.published_at IS NULL"
        " ORDER BY a.created_at LIMIT $1 FOR UPDATE OF a SKIP LOCKED",
        batch,
    )
    return [_alert(r) for r in rows]


async def mark_published(conn: asyncpg.Connection, alert_id: UUID) -> None:
    await conn.execute("UPDATE ecg.alerts SET published_at = coalesce(published_at, now()) WHERE id = $1", alert_id)


async def open_alerts(
    conn: asyncpg.Connection, visible: Iterable[UUID], *, include_acknowledged: bool, min_level: int = 0
) -> list[Alert]:
    rows = await conn.fetch(
        f"SELECT {_COLUMNS} FROM ecg.alerts a WHERE a.facility_id = ANY($1::uuid[])"
        " AND (a.status = 'open' OR ($2 AND a.acknowledged_at > now() - interval '24 hours'))"
        " AND a.escalation_level >= $3"
        " ORDER BY a.status = 'open' DESC, a.escalation_level DESC, a.created_at DESC LIMIT 500",
        list(visible), include_acknowledged, min_level,
    )
    return [_alert(r) for r in rows]


async def get_alert(conn: asyncpg.Connection, alert_id: UUID, visible: Iterable[UUID], *, lock: bool) -> Alert | None:
    row = await conn.fetchrow(
        f"SELECT {_COLUMNS} FROM ecg.alerts a WHERE a.id = $1 AND a.facility_id = ANY($2::uuid[])"
        + (" FOR UPDATE OF a" if lock else ""),
        alert_id, list(visible),
    )
    return _alert(row) if row else None


async def acknowledge(
    conn: asyncpg.Connection, alert_id: UUID, user_id: UUID, user_name: str, note: str | None
) -> Alert | None:
    row = await conn.fetchrow(
        "UPDATE ecg.alerts a SET status = 'acknowledged', acknowledged_at = now(), acknowledged_by = $2,"
        f" acknowledged_name = $3, acknowledge_note = $4 WHERE a.id = $1 AND a.status = 'open' RETURNING {_COLUMNS}",
        alert_id, user_id, user_name, note,
    )
    return _alert(row) if row else None


async def escalate_due(
    conn: asyncpg.Connection, after_seconds: float, max_level: int, batch: int = 200
) -> list[Alert]:
    """Raise the level of open alerts nobody acknowledged in time (level n is due n+1 periods after creation)."""
    rows = await conn.fetch(
        "UPDATE ecg.alerts a SET escalation_level = a.escalation_level + 1, escalated_at = now()"
        " FROM (SELECT id FROM ecg.alerts WHERE status = 'open' AND escalation_level < $2"
        "       AND created_at <= now() - make_interval(secs => $1 * (escalation_level + 1))"
        "       ORDER BY created_at LIMIT $3 FOR UPDATE SKIP LOCKED) due"
        f" WHERE a.id = due.id RETURNING {_COLUMNS}",
        float(after_seconds), max_level, batch,
    )
    return [_alert(r) for r in rows]


async def add_assignees(
    conn: asyncpg.Connection, alert_id: UUID, user_ids: list[UUID], names: list[str]
) -> Alert | None:
    """Add readers (now on duty) to those the alert is assigned to, keeping the earlier ones."""
    row = await conn.fetchrow(
        "UPDATE ecg.alerts a SET assigned_to = a.assigned_to || $2::uuid[],"
        " assigned_names = a.assigned_names || $3::text[]"
        f" WHERE a.id = $1 RETURNING {_COLUMNS}",
        alert_id, user_ids, names,
    )
    return _alert(row) if row else None
