"""SQL of ECG recordings, their analysis and the worklist. Every read is scoped to the caller's facilities.

Alerts live in repository_alerts.py, reports in repository_reports.py. Transactions belong to the caller.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import Any
from uuid import UUID

import asyncpg

from services.ecg.schemas import Recording, RecordingSummary, SignalLayout, WorklistItem

_SUMMARY = (
    "r.id, r.facility_id, r.patient_id, r.priority, r.status, r.critical, r.source_format, r.fs, r.lead_names,"
    " r.duration_s, r.start_time, r.received_at, r.analysed_at, r.signed_at"
)
_DETAIL = (
    _SUMMARY + ", r.uploaded_by, r.clinical_note, r.n_samples, r.device, r.device_measurements, r.file_patient,"
    " r.warnings, r.original_files, r.analysis_error"
)
PRIORITY_RANK = "CASE r.priority WHEN 'stat' THEN 0 WHEN 'urgent' THEN 1 ELSE 2 END"


def _ids(facilities: Iterable[UUID]) -> list[UUID]:
    return list(facilities)


async def insert_recording(conn: asyncpg.Connection, values: dict[str, Any]) -> None:
    await conn.execute(
        "INSERT INTO ecg.recordings (id, facility_id, patient_id, uploaded_by, priority, clinical_note,"
        " source_format, original_files, signal_key, signal_layout, fs, lead_names, n_samples, duration_s,"
        " start_time, device, device_measurements, file_patient, warnings)"
        " VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18, $19)",
        values["id"], values["facility_id"], values["patient_id"], values["uploaded_by"], values["priority"],
        values["clinical_note"], values["source_format"], values["original_files"], values["signal_key"],
        values["signal_layout"], values["fs"], values["lead_names"], values["n_samples"], values["duration_s"],
        values["start_time"], values["device"], values["device_measurements"], values["file_patient"],
        values["warnings"],
    )


async def get_recording(conn: asyncpg.Connection, recording_id: UUID, visible: Iterable[UUID]) -> Recording | None:
    row = await conn.fetchrow(
        f"SELECT {_DETAIL}, a.analysis, a.findings, al.id AS alert_id, rp.id AS report_id,"
        " rp.reader_name FROM ecg.recordings r"
        " LEFT JOIN ecg.analyses a ON a.recording_id = r.id"
        " LEFT JOIN ecg.alerts al ON al.recording_id = r.id"
        " LEFT JOIN ecg.reports rp ON rp.recording_id = r.id"
        " WHERE r.id = $1 AND r.facility_id = ANY($2::uuid[])",
        recording_id, _ids(visible),
    )
    if row is None:
        return None
    data = dict(row)
    data["findings"] = data["findings"] or []
    return Recording(**data)


async def recording_facility(conn: asyncpg.Connection, recording_id: UUID, visible: Iterable[UUID]) -> Any:
    """(facility_id, status, priority, received_at) of a visible recording, locked for update; None if hidden."""
    return await conn.fetchrow(
        "SELECT id, facility_id, status, priority, received_at, critical FROM ecg.recordings"
        " WHERE id = $1 AND facility_id = ANY($2::uuid[]) FOR UPDATE",
        recording_id, _ids(visible),
    )


async def signal_info(
    conn: asyncpg.Connection, recording_id: UUID, visible: Iterable[UUID]
) -> tuple[str, SignalLayout, float, list[str]] | None:
    row = await conn.fetchrow(
        "SELECT signal_key, signal_layout, fs, lead_names FROM ecg.recordings"
        " WHERE id = $1 AND facility_id = ANY($2::uuid[])",
        recording_id, _ids(visible),
    )
    if row is None:
        return None
    return row["signal_key"], SignalLayout(**row["signal_layout"]), float(row["fs"]), list(row["lead_names"])


async def original_files(conn: asyncpg.Connection, recording_id: UUID, visible: Iterable[UUID]) -> list[Any] | None:
    value = await conn.fetchval(
        "SELECT original_files FROM ecg.recordings WHERE id = $1 AND facility_id = ANY($2::uuid[])",
        recording_id, _ids(visible),
    )
    return list(value) if value is not None else None


async def list_recordings(
    conn: asyncpg.Connection,
    visible: Iterable[UUID],
    *,
    statuses: Sequence[str] | None,
    priority: str | None,
    facility_id: UUID | None,
    received_from: datetime | None,
    received_to: datetime | None,
    patient_id: UUID | None,
    limit: int,
    offset: int,
) -> list[RecordingSummary]:
    rows = await conn.fetch(
        f"SELECT {_SUMMARY}, rp.reader_name FROM ecg.recordings r"
        " LEFT JOIN ecg.reports rp ON rp.recording_id = r.id"
        " WHERE r.facility_id = ANY($1::uuid[])"
        " AND ($2::text[] IS NULL OR r.status = ANY($2::text[]))"
        " AND ($3::text IS NULL OR r.priority = $3)"
        " AND ($4::uuid IS NULL OR r.facility_id = $4)"
        " AND ($5::timestamptz IS NULL OR r.received_at >= $5)"
        " AND ($6::timestamptz IS NULL OR r.received_at < $6)"
        " AND ($7::uuid IS NULL OR r.patient_id = $7)"
        " ORDER BY r.received_at DESC, r.id LIMIT $8 OFFSET $9",
        _ids(visible), list(statuses) if statuses else None, priority, facility_id, received_from, received_to,
        patient_id, limit, offset,
    )
    return [RecordingSummary(**dict(r)) for r in rows]


async def worklist(
    conn: asyncpg.Connection,
    facilities: Iterable[UUID],
    *,
    statuses: Sequence[str],
    priority: str | None,
    limit: int,
    offset: int,
) -> list[WorklistItem]:
    """Critical first, then priority, then the oldest."""
    rows = await conn.fetch(
        f"SELECT {_SUMMARY}, rp.reader_name, al.finding, al.status AS alert_status FROM ecg.recordings r"
        " LEFT JOIN ecg.reports rp ON rp.recording_id = r.id"
        " LEFT JOIN ecg.alerts al ON al.recording_id = r.id"
        " WHERE r.facility_id = ANY($1::uuid[]) AND r.status = ANY($2::text[])"
        " AND ($3::text IS NULL OR r.priority = $3)"
        f" ORDER BY r.critical DESC, {PRIORITY_RANK}, r.received_at, r.id LIMIT $4 OFFSET $5",
        _ids(facilities), list(statuses), priority, limit, offset,
    )
    return [WorklistItem(**dict(r)) for r in rows]


async def set_status(conn: asyncpg.Connection, recording_id: UUID, status: str, *, error: str | None = None) -> None:
    """Analysis progress: 'analysing' (started now) or 'failed' (with the reason)."""
    await conn.execute(
        "UPDATE ecg.recordings SET status = $2, analysis_error = $3,"
        " analysis_started_at = CASE WHEN $2 = 'analysing' THEN now() ELSE analysis_started_at END,"
        " analysed_at = CASE WHEN $2 = 'failed' THEN now() ELSE analysed_at END"
        " WHERE id = $1 AND status IN ('new', 'analysing', 'failed')",
        recording_id, status, error,
    )


async def stalled_recordings(conn: asyncpg.Connection, new_seconds: float, running_seconds: float) -> list[UUID]:
    """Recordings whose analysis job was lost: still new, or analysing for longer than a job may run."""
    rows = await conn.fetch(
        "SELECT id FROM ecg.recordings WHERE (status = 'new' AND received_at < now() - make_interval(secs => $1))"
        " OR (status = 'analysing' AND analysis_started_at < now() - make_interval(secs => $2))"
        " ORDER BY received_at LIMIT 100",
        float(new_seconds), float(running_seconds),
    )
    return [r["id"] for r in rows]


# -- the analysis job (system principal) ----------------------------------------------------------


async def job_recording(conn: asyncpg.Connection, recording_id: UUID) -> Any:
    """The row the analysis task needs, locked so that two deliveries never analyse at once."""
    return await conn.fetchrow(
        "SELECT r.id, r.facility_id, r.status, r.priority, r.signal_key, r.signal_layout, r.fs, r.lead_names,"
        " r.n_samples, r.source_format, r.start_time, r.file_patient, a.recording_id IS NOT NULL AS analysed"
        " FROM ecg.recordings r LEFT JOIN ecg.analyses a ON a.recording_id = r.id"
        " WHERE r.id = $1 FOR UPDATE OF r",
        recording_id,
    )


async def recording_exists(conn: asyncpg.Connection, recording_id: UUID) -> bool:
    return bool(await conn.fetchval("SELECT 1 FROM ecg.recordings WHERE id = $1", recording_id))


async def insert_analysis(
    conn: asyncpg.Connection,
    recording_id: UUID,
    facility_id: UUID,
    analysis: dict[str, Any],
    findings: list[dict[str, Any]],
    engine: str,
    elapsed_ms: float,
) -> bool:
    """Store the machine reading once; False when it was already there (a redelivered task)."""
    status = await conn.execute(
        "INSERT INTO ecg.analyses (recording_id, facility_id, analysis, findings, engine, elapsed_ms)"
        " VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (recording_id) DO NOTHING",
        recording_id, facility_id, analysis, findings, engine, elapsed_ms,
    )
    return bool(status.endswith(" 1"))


async def mark_analysed(conn: asyncpg.Connection, recording_id: UUID, critical: bool) -> None:
    await conn.execute(
        "UPDATE ecg.recordings SET status = CASE WHEN status IN ('new', 'analysing', 'failed') THEN 'ready'"
        " ELSE status END, critical = $2, analysis_error = NULL, analysed_at = now() WHERE id = $1",
        recording_id, critical,
    )


async def analysis_of(conn: asyncpg.Connection, recording_id: UUID) -> dict[str, Any] | None:
    value = await conn.fetchval("SELECT analysis FROM ecg.analyses WHERE recording_id = $1", recording_id)
    return dict(value) if value is not None else None


async def render_source(conn: asyncpg.Connection, recording_id: UUID) -> Any:
    """What the report renderer needs of a recording (system principal)."""
    return await conn.fetchrow(
        "SELECT r.id, r.facility_id, r.patient_id, r.priority, r.source_format, r.fs, r.lead_names, r.n_samples,"
        " r.duration_s, r.start_time, r.received_at, r.device, r.file_patient, r.signal_key, r.signal_layout"
        " FROM ecg.recordings r WHERE r.id = $1",
        recording_id,
    )
