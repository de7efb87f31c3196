"""SQL of reading: the worklist, reading items, readers, reports and addenda (scoped to the caller's
facilities; the renderer runs as the platform)."""

# ruff: noqa: S608  (SQL joins only column-name constants and fixed conditions; values are bind parameters)

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from typing import Any
from uuid import UUID

import asyncpg

from common.signing import Addendum
from services.imaging.reading_schemas import Report, WorklistItem

_COLUMNS = (
    "r.id, r.study_ref, st.study_instance_uid, r.facility_id, r.reading_facility_id, r.modality, r.template,"
    " r.reader_id, r.reader_name, r.findings, r.impression, r.critical, r.critical_note, r.critical_raised_at,"
    " r.version, r.created_at, r.updated_at, r.signed_at, r.signed_by, r.signer_name, r.content_hash,"
    " r.turnaround_minutes, r.on_time, r.report_series_uid, r.pdf_key, r.dicom_sop_uid, r.rendered_version"
)
_FROM = "imaging.reports r JOIN imaging.studies st ON st.id = r.study_ref"


def _ids(values: Iterable[UUID]) -> list[UUID]:
    return list(values)


def as_report(row: Any, addenda: list[Addendum] | None = None) -> Report:
    data = dict(row)
    data["status"] = "signed" if data["signed_at"] else "draft"
    data["pdf_ready"] = bool(data.pop("pdf_key"))
    data["dicom_sop_instance_uid"] = data.pop("dicom_sop_uid")
    for key in ("study_ref", "critical_raised_at", "rendered_version"):
        data.pop(key, None)
    return Report(**data, addenda=addenda or [])


async def study(conn: asyncpg.Connection, study_uid: str, visible: Iterable[UUID], *, lock: bool = False) -> Any:
    """The visible study with its reading item (NULLs when nobody touched it yet)."""
    return await conn.fetchrow(
        "SELECT s.id, s.facility_id, s.study_instance_uid, s.modalities, s.received_at,"
        " coalesce(ri.priority, 'routine') AS priority, coalesce(ri.status, 'new') AS status,"
        " ri.assignee_id, ri.assignee_name"
        " FROM imaging.studies s LEFT JOIN imaging.reading_items ri ON ri.study_ref = s.id"
        " WHERE s.study_instance_uid = $1 AND s.facility_id = ANY($2::uuid[])"
        + (" FOR UPDATE OF s" if lock else ""),
        study_uid, _ids(visible),
    )


async def upsert_item(conn: asyncpg.Connection, study_ref: UUID, facility_id: UUID, **changes: Any) -> None:
    """Create the study's reading item if needed and apply ``changes`` (column -> value)."""
    cols = list(changes)
    insert_cols = ", ".join(["study_ref", "facility_id", *cols])
    params = ", ".join(f"${i}" for i in range(1, len(cols) + 3))
    sets = ", ".join([*(f"{c} = EXCLUDED.{c}" for c in cols), "updated_at = now()"])
    await conn.execute(
        f"INSERT INTO imaging.reading_items ({insert_cols}) VALUES ({params})"
        f" ON CONFLICT (study_ref) DO UPDATE SET {sets}",
        study_ref, facility_id, *changes.values(),
    )


async def worklist(
    conn: asyncpg.Connection, facilities: Iterable[UUID], *, statuses: list[str], priority: str | None,
    modality: str | None, requesting: UUID | None, received_from: datetime | None, received_to: datetime | None,
    assignee: UUID | None, limit: int, offset: int, study_ref: UUID | None = None,
) -> list[WorklistItem]:
    where = ["s.facility_id = ANY($1::uuid[])", "coalesce(ri.status, 'new') = ANY($2::text[])"]
    args: list[Any] = [_ids(facilities), statuses]
    for cond, value in (
        ("coalesce(ri.priority, 'routine') = ${}", priority),
        ("${} = ANY(s.modalities)", modality),
        ("s.facility_id = ${}", requesting),
        ("s.received_at >= ${}", received_from),
        ("s.received_at < ${}", received_to),
        ("ri.assignee_id = ${}", assignee),
        ("s.id = ${}", study_ref),
    ):
        if value is not None:
            args.append(value)
            where.append(cond.format(len(args)))
    args += [limit, offset]
    rows = await conn.fetch(
        "SELECT s.study_instance_uid, s.facility_id, coalesce(ri.priority, 'routine') AS priority,"
        " coalesce(ri.status, 'new') AS status, s.modalities, s.study_date::text AS study_date,"
        " s.study_description, s.num_series, s.num_instances, s.received_at,"
        " coalesce(ri.clinical_question, '') AS clinical_question, ri.assignee_id, ri.assignee_name,"
        " r.id AS report_id, coalesce(r.critical, false) AS critical"
        " FROM imaging.studies s"
        " LEFT JOIN imaging.reading_items ri ON ri.study_ref = s.id"
        " LEFT JOIN imaging.reports r ON r.study_ref = s.id"
        f" WHERE {' AND '.join(where)}"
        " ORDER BY CASE coalesce(ri.priority, 'routine') WHEN 'stat' THEN 0 WHEN 'urgent' THEN 1 ELSE 2 END,"
        f" s.received_at, s.id LIMIT ${len(args) - 1} OFFSET ${len(args)}",
        *args,
    )
    return [WorklistItem(**dict(r)) for r in rows]


async def worklist_item(conn: asyncpg.Connection, study_ref: UUID, facility_id: UUID) -> WorklistItem:
    items = await worklist(conn, [facility_id], statuses=["new", "assigned", "in_progress", "reported", "signed"],
                           priority=None, modality=None, requesting=None, received_from=None, received_to=None,
                           assignee=None, limit=1, offset=0, study_ref=study_ref)
    return items[0]


async def note_reader(conn: asyncpg.Connection, user_id: UUID, facility_id: UUID, name: str) -> None:
    await conn.execute(
        "INSERT INTO imaging.readers (user_id, facility_id, name) VALUES ($1, $2, $3)"
        " ON CONFLICT (user_id) DO UPDATE SET facility_id = EXCLUDED.facility_id, name = EXCLUDED.name,"
        " last_seen = now()",
        user_id, facility_id, name,
    )


async def readers(conn: asyncpg.Connection, facility_id: UUID) -> list[Any]:
    rows: list[Any] = await conn.fetch(
        "SELECT user_id, name FROM imaging.readers WHERE facility_id = $1 ORDER BY name, user_id", facility_id
    )
    return rows


async def report_row(conn: asyncpg.Connection, study_ref: UUID, *, lock: bool = False) -> Any:
    return await conn.fetchrow(
        f"SELECT {_COLUMNS} FROM {_FROM} WHERE r.study_ref = $1" + (" FOR UPDATE OF r" if lock else ""), study_ref
    )


async def insert_report(conn: asyncpg.Connection, values: dict[str, Any]) -> Any:
    await conn.execute(
        "INSERT INTO imaging.reports (id, study_ref, facility_id, reading_facility_id, modality, template,"
        " reader_id, reader_name, findings, impression) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)",
        values["id"], values["study_ref"], values["facility_id"], values["reading_facility_id"],
        values["modality"], values["template"], values["reader_id"], values["reader_name"], values["findings"],
        values["impression"],
    )
    return await report_row(conn, values["study_ref"])


async def reassign_draft(conn: asyncpg.Connection, study_ref: UUID, reader_id: UUID, reader_name: str) -> None:
    await conn.execute(
        "UPDATE imaging.reports SET reader_id = $2, reader_name = $3, updated_at = now()"
        " WHERE study_ref = $1 AND signed_at IS NULL",
        study_ref, reader_id, reader_name,
    )


async def update_draft(conn: asyncpg.Connection, report_id: UUID, version: int, changes: dict[str, Any]) -> Any:
    """Apply ``changes`` to an unsigned draft still at ``version``; None otherwise."""
    allowed = ("findings", "impression", "critical", "critical_note", "critical_raised_at")
    cols = [c for c in allowed if c in changes]
    sets = [f"{c} = ${i}" for i, c in enumerate(cols, start=3)]
    updated = await conn.fetchval(
        "UPDATE imaging.reports SET " + ", ".join([*sets, "updated_at = now()", "version = version + 1"])
        + " WHERE id = $1 AND version = $2 AND signed_at IS NULL RETURNING study_ref",
        report_id, version, *[changes[c] for c in cols],
    )
    return None if updated is None else await report_row(conn, updated)


async def sign(
    conn: asyncpg.Connection, report_id: UUID, *, version: int, signed_at: datetime, signer_id: UUID,
    signer_name: str, content_hash: str, turnaround_minutes: float, on_time: bool, series_uid: str,
    critical_raised_at: datetime | None,
) -> Any:
    study_ref = await conn.fetchval(
        "UPDATE imaging.reports SET signed_at = $3, signed_by = $4, signer_name = $5, content_hash = $6,"
        " turnaround_minutes = $7, on_time = $8, report_series_uid = $9, updated_at = $3,"
        " critical_raised_at = coalesce(critical_raised_at, $10)"
        " WHERE id = $1 AND version = $2 AND signed_at IS NULL RETURNING study_ref",
        report_id, version, signed_at, signer_id, signer_name, content_hash, turnaround_minutes, on_time,
        series_uid, critical_raised_at,
    )
    return None if study_ref is None else await report_row(conn, study_ref)


async def insert_addendum(conn: asyncpg.Connection, values: dict[str, Any]) -> Addendum:
    row = await conn.fetchrow(
        "INSERT INTO imaging.report_addenda (id, report_id, facility_id, author_id, author_name, text,"
        " content_hash) VALUES ($1, $2, $3, $4, $5, $6, $7)"
        " RETURNING id, author_id, author_name, text, content_hash, created_at",
        values["id"], values["report_id"], values["facility_id"], values["author_id"], values["author_name"],
        values["text"], values["content_hash"],
    )
    return Addendum(**dict(row))


async def addenda_of(conn: asyncpg.Connection, report_id: UUID) -> list[Addendum]:
    rows = await conn.fetch(
        "SELECT id, author_id, author_name, text, content_hash, created_at FROM imaging.report_addenda"
        " WHERE report_id = $1 ORDER BY created_at, id",
        report_id,
    )
    return [Addendum(**dict(r)) for r in rows]


async def render_source(conn: asyncpg.Connection, study_ref: UUID) -> tuple[Any, Any]:
    """(signed report row, study row) for the renderer (system principal); (None, None) when not signed."""
    report = await conn.fetchrow(
        f"SELECT {_COLUMNS} FROM {_FROM} WHERE r.study_ref = $1 AND r.signed_at IS NOT NULL", study_ref
    )
    if report is None:
        return None, None
    st = await conn.fetchrow(
        "SELECT s.id, s.facility_id, s.study_instance_uid, s.attributes, s.received_at,"
        " coalesce(ri.priority, 'routine') AS priority, s.study_description, s.study_date::text AS study_date"
        " FROM imaging.studies s LEFT JOIN imaging.reading_items ri ON ri.study_ref = s.id WHERE s.id = $1",
        study_ref,
    )
    return report, st


async def set_rendered(conn: asyncpg.Connection, report_id: UUID, pdf_key: str, sop_uid: str, version: int) -> None:
    """Point the report at a rendering unless a newer one (more addenda) is already there."""
    await conn.execute(
        "UPDATE imaging.reports SET pdf_key = $2, dicom_sop_uid = $3, rendered_version = $4"
        " WHERE id = $1 AND rendered_version < $4",
        report_id, pdf_key, sop_uid, version,
    )
