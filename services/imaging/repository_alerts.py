"""SQL of imaging critical-finding alerts. Reads are scoped to the caller's facilities; the beat task runs as
the system principal."""

# ruff: noqa: S608  (SQL joins only column-name constants; values are bind parameters)

from __future__ import annotations

from collections.abc import Iterable
from typing import Any
from uuid import UUID

import asyncpg

from services.imaging.reading_schemas import CriticalAlert

_COLUMNS = (
    "a.id, a.facility_id, a.study_instance_uid, a.report_id, a.reading_facility_id, a.reader_name, a.modality,"
    " a.priority, a.note, a.signed, a.message_zh, a.message_en, a.status, a.escalation_level, a.escalated_at,"
    " a.acknowledged_at, a.acknowledged_by, a.acknowledged_name, a.acknowledge_note, a.created_at"
)


def _alert(row: Any) -> CriticalAlert:
    return CriticalAlert(**dict(row))


async def insert_alert(conn: asyncpg.Connection, values: dict[str, Any]) -> CriticalAlert | None:
    """One alert per report: None when the report has one already."""
    row = await conn.fetchrow(
        "INSERT INTO imaging.critical_alerts AS a (id, facility_id, study_ref, report_id, study_instance_uid,"
        " reading_facility_id, reader_name, modality, priority, note, signed, message_zh, message_en)"
        " VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13)"
        f" ON CONFLICT (report_id) DO NOTHING RETURNING {_COLUMNS}",
        values["id"], values["facility_id"], values["study_ref"], values["report_id"],
        values["study_instance_uid"], values["reading_facility_id"], values["reader_name"], values["modality"],
        values["priority"], values["note"], values["signed"], values["message_zh"], values["message_en"],
    )
    return _alert(row) if row else None


async def mark_published(conn: asyncpg.Connection, alert_id: UUID) -> None:
    await conn.execute(
        "UPDATE imaging.critical_alerts SET published_at = coalesce(published_at, now()) WHERE id = $1", alert_id
    )


async def unpublished_open(conn: asyncpg.Connection, batch: int = 100) -> list[CriticalAlert]:
    rows = await conn.fetch(
        f"SELECT {_COLUMNS} FROM imaging.critical_alerts a WHERE a.status = 'open' AND a.published_at IS NULL"
        " ORDER BY a.created_at LIMIT $1 FOR UPDATE OF a SKIP LOCKED",
        batch,
    )
    return [_alert(r) for r in rows]


async def open_alerts(conn: asyncpg.Connection, visible: Iterable[UUID], *,
                      include_acknowledged: bool) -> list[CriticalAlert]:
    rows = await conn.fetch(
        f"SELECT {_COLUMNS} FROM imaging.critical_alerts a WHERE a.facility_id = ANY($1::uuid[])"
        " AND (a.status = 'open' OR ($2 AND a.acknowledged_at > now() - interval '24 hours'))"
        " ORDER BY a.status = 'open' DESC, a.escalation_level DESC, a.created_at DESC LIMIT 500",
        list(visible), include_acknowledged,
    )
    return [_alert(r) for r in rows]


async def get_alert(conn: asyncpg.Connection, alert_id: UUID, visible: Iterable[UUID]) -> CriticalAlert | None:
    row = await conn.fetchrow(
        f"SELECT {_COLUMNS} FROM imaging.critical_alerts a WHERE a.id = $1 AND a.facility_id = ANY($2::uuid[])"
        " FOR UPDATE OF a",
        alert_id, list(visible),
    )
    return _alert(row) if row else None


async def acknowledge(conn: asyncpg.Connection, alert_id: UUID, user_id: UUID, name: str,
                      note: str | None) -> CriticalAlert | None:
    row = await conn.fetchrow(
        "UPDATE imaging.critical_alerts a SET status = 'acknowledged', acknowledged_at = now(),"
        f" acknowledged_by = $2, acknowledged_name = $3, acknowledge_note = $4"
        f" WHERE a.id = $1 AND a.status = 'open' RETURNING {_COLUMNS}",
        alert_id, user_id, name, note,
    )
    return _alert(row) if row else None


async def escalate_due(conn: asyncpg.Connection, after_seconds: float, max_level: int,
                       batch: int = 200) -> list[CriticalAlert]:
    """Raise the level of open alerts nobody acknowledged in time (level n is due n+1 periods after creation)."""
    rows = await conn.fetch(
        "UPDATE imaging.critical_alerts a SET escalation_level = a.escalation_level + 1, escalated_at = now()"
        " FROM (SELECT id FROM imaging.critical_alerts WHERE status = 'open' AND escalation_level < $2"
        "       AND created_at <= now() - make_interval(secs => $1 * (escalation_level + 1))"
        "       ORDER BY created_at LIMIT $3 FOR UPDATE SKIP LOCKED) due"
        f" WHERE a.id = due.id RETURNING {_COLUMNS}",
        float(after_seconds), max_level, batch,
    )
    return [_alert(r) for r in rows]
