"""SQL of session recordings (migrations/0006) and of what a room needs of its session. The caller owns the
transaction."""

from __future__ import annotations

from datetime import datetime
from uuid import UUID

import asyncpg
from pydantic import BaseModel, ConfigDict


class RecordingFile(BaseModel):
    """One recorded track file of a session (a row of consult.recordings)."""

    model_config = ConfigDict(frozen=True)

    id: UUID
    recording_id: UUID
    session_id: UUID
    consult_id: UUID
    participant_user_id: UUID
    kind: str
    content_type: str
    size_bytes: int
    duration_seconds: float
    started_by: UUID
    started_at: datetime
    ended_at: datetime


class RecordingObject(RecordingFile):
    facility_id: UUID
    target_facility_id: UUID
    object_key: str
    consented_user_ids: list[UUID]


class SessionFacilities(BaseModel):
    consult_id: UUID
    facility_id: UUID
    target_facility_id: UUID


_FILE_COLUMNS = ("id, recording_id, session_id, consult_id, participant_user_id, kind, content_type, size_bytes,"
                 " duration_seconds, started_by, started_at, ended_at")


async def session_facilities(conn: asyncpg.Connection, session_id: UUID) -> SessionFacilities | None:
    row = await conn.fetchrow(
        "SELECT consult_id, facility_id, target_facility_id FROM consult.sessions WHERE id = $1", session_id)
    return SessionFacilities.model_validate(dict(row)) if row is not None else None


async def insert_recording(conn: asyncpg.Connection, r: RecordingObject) -> None:
    await conn.execute(
        "INSERT INTO consult.recordings (id, recording_id, session_id, consult_id, facility_id, target_facility_id,"
        " participant_user_id, kind, object_key, content_type, size_bytes, duration_seconds, started_by,"
        " consented_user_ids, started_at, ended_at)"
        " VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16)",
        r.id, r.recording_id, r.session_id, r.consult_id, r.facility_id, r.target_facility_id,
        r.participant_user_id, r.kind, r.object_key, r.content_type, r.size_bytes, r.duration_seconds,
        r.started_by, r.consented_user_ids, r.started_at, r.ended_at,
    )


async def recordings_of_consult(conn: asyncpg.Connection, consult_id: UUID) -> list[RecordingFile]:
    rows = await conn.fetch(
        f"SELECT {_FILE_COLUMNS} FROM consult.recordings WHERE consult_id = $1"
        " ORDER BY started_at, participant_user_id, kind", consult_id)
    return [RecordingFile.model_validate(dict(r)) for r in rows]


async def recording(conn: asyncpg.Connection, file_id: UUID) -> RecordingObject | None:
    row = await conn.fetchrow(
        f"SELECT {_FILE_COLUMNS}, facility_id, target_facility_id, object_key, consented_user_ids"
        " FROM consult.recordings WHERE id = $1", file_id)
    return RecordingObject.model_validate(dict(row)) if row is not None else None
